import type { Client } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  type ChatEvent,
  type ChatService,
  ChatState,
  type WatchInboxResponse,
  WatchChatRequestSchema,
  WatchInboxRequestSchema,
} from "../../../gen/ts/lethe/chat/v1/chat_pb";
import { resume, type WatchEnd } from "./resume";

export type { WatchEnd } from "./resume";

/** A client of the generated ChatService. */
export type ChatClient = Client<typeof ChatService>;

/** Callbacks and options for {@link watchChatResuming}. */
export interface WatchChatOptions {
  /**
   * Called once per stored event, in order, never twice for the same seq, and
   * for every ephemeral typing event (seq 0n). `state` is the chat's state as
   * the server reported it with this event.
   */
  onEvent(event: ChatEvent, state: ChatState): void;
  /** Called whenever the reported chat state differs from the previous one. */
  onState?(state: ChatState): void;
  /**
   * Called with true when a stream delivers its first response and with false
   * (and the error) when it breaks and a reconnect is scheduled.
   */
  onConnection?(live: boolean, err?: ConnectError): void;
  /**
   * Called when the server says reconnecting cannot help (a code in
   * {@link FINAL_CODES}: UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND,
   * INVALID_ARGUMENT, FAILED_PRECONDITION, UNIMPLEMENTED), typically because
   * the chat was destroyed and its token forgotten. The watch ends right
   * after. A chat that closes is not an error: it ends the watch with
   * "closed" after its closed event.
   */
  onFinalError?(err: ConnectError): void;
  /** Start after this seq; 0n (the default) replays the whole history. */
  afterSeq?: bigint;
  /** Aborting ends the watch without calling onFinalError. */
  signal?: AbortSignal;
}

/**
 * watchChatResuming follows one chat through ChatService.WatchChat until the
 * chat closes, the signal aborts or the server gives a final error. Broken
 * streams are resumed after a backoff (250 ms doubling to 5 s, with jitter)
 * from the last seq seen, so the caller sees every stored event exactly once.
 */
export function watchChatResuming(client: ChatClient, chatId: string, opts: WatchChatOptions): Promise<WatchEnd> {
  let lastSeq = opts.afterSeq ?? 0n;
  let lastState = ChatState.UNSPECIFIED;
  return resume({
    signal: opts.signal,
    open: (signal) => client.watchChat(create(WatchChatRequestSchema, { chatId, afterSeq: lastSeq }), { signal }),
    onLive: () => opts.onConnection?.(true),
    onBreak: (err) => opts.onConnection?.(false, err),
    onFinalError: opts.onFinalError,
    onMessage: (res) => {
      if (res.state !== ChatState.UNSPECIFIED && res.state !== lastState) {
        lastState = res.state;
        opts.onState?.(res.state);
      }
      const ev = res.event;
      if (!ev) return false;
      if (ev.seq !== 0n) {
        if (ev.seq <= lastSeq) return false;
        lastSeq = ev.seq;
      }
      opts.onEvent(ev, res.state);
      return ev.kind.case === "closed";
    },
  }).done;
}

/** Callbacks and options for {@link watchInboxResuming}. */
export interface WatchInboxOptions {
  /**
   * Called for every response. Chat events arrive at most once per
   * (chat, seq); typing events (seq 0n) are always passed on.
   */
  onMessage(res: WatchInboxResponse): void;
  /**
   * Called when a (re)connected stream delivers its first response. A new
   * snapshot follows, ending with snapshot_done: the caller should treat
   * chats it shows but the snapshot does not mention as gone.
   */
  onConnected?(): void;
  /** Called when the stream breaks and a reconnect is scheduled. */
  onDisconnected?(err?: ConnectError): void;
  /**
   * Called on a code in {@link FINAL_CODES} (UNAUTHENTICATED: the session
   * ended); the watch ends.
   */
  onFinalError?(err: ConnectError): void;
  /** Last seqs the caller already shows, by chat id, for the first connect. */
  afterSeq?: ReadonlyMap<string, bigint>;
  /** Aborting ends the watch. */
  signal?: AbortSignal;
}

/** A running inbox watch. */
export interface InboxWatch {
  /** Settles when the watch ends (abort or final error). */
  readonly done: Promise<WatchEnd>;
  /**
   * reconnect drops the current stream and opens a new one at once, resuming
   * from the seqs seen so far. Use it when a summary shows events the stream
   * has not delivered.
   */
  reconnect(): void;
  /** forget drops a chat's seq so a later resume replays its whole history. */
  forget(chatId: string): void;
  /** lastSeq returns the last stored seq delivered for a chat (0n if none). */
  lastSeq(chatId: string): bigint;
}

/**
 * watchInboxResuming keeps the operator's one ChatService.WatchInbox stream
 * open. It remembers the last seq of every chat it delivered events for and
 * passes them as after_seq when it reconnects, so nothing is lost or repeated;
 * a chat_removed forgets the chat.
 */
export function watchInboxResuming(client: ChatClient, opts: WatchInboxOptions): InboxWatch {
  const seqs = new Map<string, bigint>(opts.afterSeq ?? []);
  const watch = resume({
    signal: opts.signal,
    open: (signal) => client.watchInbox(create(WatchInboxRequestSchema, { afterSeq: Object.fromEntries(seqs) }), { signal }),
    onLive: () => opts.onConnected?.(),
    onBreak: (err) => opts.onDisconnected?.(err),
    onFinalError: opts.onFinalError,
    onMessage: (res) => {
      if (res.kind.case === "event") {
        const ev = res.kind.value;
        if (ev.seq !== 0n) {
          if (ev.seq <= (seqs.get(ev.chatId) ?? 0n)) return;
          seqs.set(ev.chatId, ev.seq);
        }
      } else if (res.kind.case === "chatRemoved") {
        seqs.delete(res.kind.value.chatId);
      }
      opts.onMessage(res);
    },
  });
  return {
    done: watch.done,
    reconnect: () => watch.reconnect(),
    forget(chatId) {
      seqs.delete(chatId);
    },
    lastSeq(chatId) {
      return seqs.get(chatId) ?? 0n;
    },
  };
}

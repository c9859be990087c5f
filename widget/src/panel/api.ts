/**
 * The chat panel's calls, over Connect JSON by hand (../json-rpc.ts), so that
 * its first load carries no protobuf runtime: ChatService and ConsentService
 * as the visitor uses them, with the chat's visitor token as bearer. The
 * JSON leaves out fields with default values and spells enums by name, int64
 * as strings and timestamps as RFC 3339; the types and converters below give
 * the panel what it reads, with the defaults filled in. What needs the
 * generated clients (uploads and shared files, "Your data") is in chunks
 * loaded on first use; the chat's file limits, which show or hide the paper
 * clip, come through here.
 */
import type { FileLimits } from "../../../ui/attach";
import { RpcError, jsonRpc, jsonStream, rpcCode } from "../json-rpc";
import { backoffDelay } from "../visit";

export { RpcError, rpcCode };

/** errorMessage is the text to show for a failed call: the server's own message (safe by contract). */
export function errorMessage(err: unknown): string {
  return (err instanceof RpcError && err.message) || "Something went wrong. Please try again.";
}

type J = Record<string, unknown>;
const str = (v: unknown) => (typeof v === "string" ? v : "");
const num = (v: unknown) => (typeof v === "number" ? v : 0);
const obj = (v: unknown): J => (v && typeof v === "object" ? (v as J) : {});
/** int64 reads an int64, which protobuf JSON writes as a decimal string (a number is accepted too). */
const int64 = (v: unknown): bigint =>
  typeof v === "string" && /^-?\d{1,20}$/.test(v) ? BigInt(v) : typeof v === "number" && Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;

/** The account's widget config. */
export interface WidgetConfig {
  accountName: string;
  operatorsOnline: boolean;
  maxMessageChars: number;
  offlineMessagesEnabled: boolean;
  transcriptRequestsEnabled: boolean;
}

/** A consent text for one form. */
export interface ConsentText {
  version: number;
  text: string;
  required: boolean;
}

export type Author = "visitor" | "operator" | "system";
/** A chat's state: "" when the server did not say. */
export type ChatState = "waiting" | "active" | "closed" | "";

/** A chat event, the kinds the panel shows; a file event keeps its JSON for the files chunk. */
export interface ChatEvent {
  seq: bigint;
  /** When it happened ("" for typing). */
  time: string;
  kind:
    | { case: "started"; value: { visitorName: string } }
    | { case: "message"; value: { author: Author; authorName: string; text: string } }
    | { case: "typing"; value: { author: Author; authorName: string; typing: boolean } }
    | { case: "operatorJoined" | "operatorLeft"; value: { operatorName: string } }
    | { case: "closed"; value: { reason: string } }
    | { case: "file"; value: { author: Author; authorName: string; json: J } }
    | { case: undefined };
}

const author = (v: unknown): Author => (v === "AUTHOR_KIND_OPERATOR" ? "operator" : v === "AUTHOR_KIND_SYSTEM" ? "system" : "visitor");

/** chatState reads a ChatState enum name. */
export const chatState = (v: unknown): ChatState =>
  v === "CHAT_STATE_WAITING" ? "waiting" : v === "CHAT_STATE_ACTIVE" ? "active" : v === "CHAT_STATE_CLOSED" ? "closed" : "";

/** chatEvent reads a ChatEvent. */
export function chatEvent(j: J): ChatEvent {
  const seq = /^\d{1,20}$/.test(str(j.seq)) ? BigInt(str(j.seq)) : 0n;
  const ev = (kind: ChatEvent["kind"]): ChatEvent => ({ seq, time: str(j.time), kind });
  let v: J;
  if (j.started) return ev({ case: "started", value: { visitorName: str(obj(j.started).visitorName) } });
  if (j.message) {
    v = obj(j.message);
    return ev({ case: "message", value: { author: author(v.authorKind), authorName: str(v.authorName), text: str(v.text) } });
  }
  if (j.typing) {
    v = obj(j.typing);
    return ev({ case: "typing", value: { author: author(v.authorKind), authorName: str(v.authorName), typing: v.typing === true } });
  }
  if (j.operatorJoined) return ev({ case: "operatorJoined", value: { operatorName: str(obj(j.operatorJoined).operatorName) } });
  if (j.operatorLeft) return ev({ case: "operatorLeft", value: { operatorName: str(obj(j.operatorLeft).operatorName) } });
  if (j.closed) return ev({ case: "closed", value: { reason: str(obj(j.closed).reason) } });
  if (j.file) {
    v = obj(j.file);
    return ev({ case: "file", value: { author: author(v.authorKind), authorName: str(v.authorName), json: v } });
  }
  return ev({ case: undefined });
}

/** fileLimits reads a GetFileLimitsResponse. */
export function fileLimits(j: J): FileLimits {
  return {
    enabled: j.enabled === true,
    accept: str(j.accept),
    maxFileBytes: int64(j.maxFileBytes),
    maxChatBytes: int64(j.maxChatBytes),
    usedChatBytes: int64(j.usedChatBytes),
  };
}

const consentText = (v: unknown): ConsentText | undefined => {
  if (!v || typeof v !== "object") return undefined;
  const t = v as J;
  return { version: num(t.version), text: str(t.text), required: t.required === true };
};

/** The codes after which reconnecting cannot help. */
const FINAL = ["unauthenticated", "permission_denied", "not_found", "invalid_argument", "failed_precondition", "unimplemented"];

export interface WatchChatOptions {
  /** Called once per stored event, in order, never twice for the same seq, and for every typing event (seq 0). */
  onEvent(ev: ChatEvent): void;
  /** Called whenever the reported chat state differs from the previous one. */
  onState(state: ChatState): void;
  /** Called with true when a stream delivers its first response, false when it breaks and a reconnect is scheduled. */
  onConnection(live: boolean): void;
  /** Called when the server says reconnecting cannot help; the watch ends right after. */
  onFinalError(err: RpcError): void;
  afterSeq: bigint;
  signal: AbortSignal;
}

export type PanelApi = ReturnType<typeof panelApi>;

/** panelApi returns the panel's calls; token gives the chat's visitor token. */
export function panelApi(token: () => string | undefined) {
  const call = <T = J>(method: string, body: object) => jsonRpc<T>(location.origin, method, body, token() || "");
  const chat = (method: string, body: object) => call(`chat.v1.ChatService/${method}`, body);
  return {
    async getWidgetConfig(accountId: string): Promise<WidgetConfig> {
      const j = await chat("GetWidgetConfig", { accountId });
      return {
        accountName: str(j.accountName),
        operatorsOnline: j.operatorsOnline === true,
        maxMessageChars: num(j.maxMessageChars),
        offlineMessagesEnabled: j.offlineMessagesEnabled === true,
        transcriptRequestsEnabled: j.transcriptRequestsEnabled === true,
      };
    },
    async getConsent(accountId: string, locale: string): Promise<{ prechat?: ConsentText; offline?: ConsentText }> {
      const j = await call("consent.v1.ConsentService/GetConsent", { accountId, locale });
      return { prechat: consentText(j.prechat), offline: consentText(j.offline) };
    },
    async startChat(req: { accountId: string; visitorName: string; visitorEmail: string; firstMessage: string; locale: string; consentVersion: number }) {
      const j = await chat("StartChat", req);
      return { visitorToken: str(j.visitorToken), chatId: str(j.chatId) };
    },
    async leaveOfflineMessage(req: { accountId: string; visitorName: string; visitorEmail: string; message: string; locale: string; consentVersion: number }) {
      return { offlineToken: str((await chat("LeaveOfflineMessage", req)).offlineToken) };
    },
    sendMessage: (chatId: string, text: string) => chat("SendMessage", { chatId, text }),
    setTyping: (chatId: string, typing: boolean) => chat("SetTyping", { chatId, typing }),
    endChat: (chatId: string) => chat("EndChat", { chatId }),
    requestTranscript: (chatId: string, email: string) => chat("RequestTranscript", { chatId, email }),
    getFileLimits: async (chatId: string) => fileLimits(await call("files.v1.FileService/GetFileLimits", { chatId })),
    withdrawConsent: (chatId: string) => call("consent.v1.ConsentService/WithdrawConsent", { chatId }),

    /**
     * watchChat follows one chat through WatchChat until it closes, the
     * signal aborts or the server gives a final error. Broken streams are
     * resumed after a backoff (250 ms doubling to 5 s, with jitter) from the
     * last seq seen, so every stored event is seen exactly once.
     */
    async watchChat(chatId: string, o: WatchChatOptions): Promise<void> {
      let lastSeq = o.afterSeq;
      let lastState: ChatState = "";
      for (let fails = 0; !o.signal.aborted; ) {
        let live = false;
        let closed = false;
        try {
          await jsonStream(location.origin, "chat.v1.ChatService/WatchChat", { chatId, afterSeq: String(lastSeq) }, token() || "", o.signal, (m) => {
            if (!live) {
              live = true;
              fails = 0;
              o.onConnection(true);
            }
            const state = chatState(m.state);
            if (state && state !== lastState) {
              lastState = state;
              o.onState(state);
            }
            if (!m.event) return;
            const ev = chatEvent(obj(m.event));
            if (ev.seq !== 0n) {
              if (ev.seq <= lastSeq) return;
              lastSeq = ev.seq;
            }
            o.onEvent(ev);
            closed = ev.kind.case === "closed";
            return closed;
          });
          if (closed) return;
        } catch (e) {
          if (o.signal.aborted) return;
          if (e instanceof RpcError && FINAL.includes(e.code)) return o.onFinalError(e);
        }
        if (o.signal.aborted) return;
        o.onConnection(false);
        await new Promise((r) => setTimeout(r, backoffDelay(fails++)));
      }
    },
  };
}

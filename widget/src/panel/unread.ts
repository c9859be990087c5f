/**
 * Whether the panel is open, and what the launcher's unread badge says.
 * Pure: each function returns the next state and the caller tells the host
 * page when the count changed, and stores `seen` with the chat session when
 * it moved, so that a history replayed after a page load is not counted again.
 */
export interface Attention {
  /** The panel is open on the host page. */
  readonly open: boolean;
  /** Highest seq the visitor has had in front of them. */
  readonly seen: bigint;
  /** Highest seq the chat view has shown since it was last built. */
  readonly shown: bigint;
  /** What the launcher badge says. */
  readonly unread: number;
}

/** attentionFrom starts a page: closed, with what the stored session had seen. */
export function attentionFrom(lastSeq: string | undefined): Attention {
  const seen = lastSeq && /^\d{1,20}$/.test(lastSeq) ? BigInt(lastSeq) : 0n;
  return { open: false, seen, shown: 0n, unread: 0 };
}

/** opened: the visitor now has everything shown in front of them. */
export function opened(a: Attention): Attention {
  return { open: true, seen: a.shown > a.seen ? a.shown : a.seen, shown: a.shown, unread: 0 };
}

export function closed(a: Attention): Attention {
  return { ...a, open: false };
}

/**
 * eventShown records a chat event on screen (seq 0 for typing notices). An
 * operator's message counts as unread while the panel is closed, unless the
 * visitor saw it on an earlier page; with the panel open, it is seen.
 */
export function eventShown(a: Attention, seq: bigint, byOperator: boolean): Attention {
  const shown = seq > a.shown ? seq : a.shown;
  if (a.open) return seq === 0n ? a : opened({ ...a, shown });
  const unread = byOperator && seq > a.seen ? a.unread + 1 : a.unread;
  return { ...a, shown, unread };
}

/** viewRebuilt: the chat view starts showing its chat from the first event again. */
export function viewRebuilt(a: Attention): Attention {
  return { ...a, shown: 0n };
}

/** chatStarted: nothing of a new chat has been seen yet. */
export function chatStarted(a: Attention): Attention {
  return { ...a, seen: 0n, shown: 0n };
}

/** invitationPending: an invitation waits that the visitor saw on an earlier page. */
export function invitationPending(a: Attention): Attention {
  return a.open ? a : { ...a, unread: 1 };
}

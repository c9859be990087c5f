/**
 * The panel's side of the visit. The panel no longer reports page views: the
 * loader does, with a write-only page token it hands over when the panel is
 * ready (and again when a new visit starts). The panel exchanges it for the
 * visit token with ClaimVisit, which the server answers only for the Lethe
 * origin (this iframe), never for the host page's scripts. The visit token
 * answers invitations and shows the visit in "Your data"; it lives in memory
 * only (each claim issues a new one).
 */
import { jsonRpc } from "../json-rpc";

export interface Visit {
  /** setPageToken claims the visit of the loader's page token ("" drops it). */
  setPageToken(pageToken: string): void;
  /** token is the visit token ("" when there is no visit, or not claimed yet). */
  token(): string;
  /** claimed waits for a claim in flight. */
  claimed(): Promise<void>;
  /** forget drops the visit token (the visitor stopped tracking, or the visit was erased). */
  forget(): void;
  /** answerInvitation reports the visitor's answer (errors only to the console: the visitor chose already). */
  answerInvitation(invitationId: string, accepted: boolean): Promise<void>;
}

export function panelVisit(): Visit {
  const st: { pageToken: string; token: string; claim: Promise<void> } = { pageToken: "", token: "", claim: Promise.resolve() };
  const call = (method: string, body: object, token: string) => jsonRpc(location.origin, `monitor.v1.MonitorService/${method}`, body, token);
  return {
    setPageToken(pageToken) {
      if (pageToken === st.pageToken) return;
      st.pageToken = pageToken;
      st.token = "";
      if (!pageToken) return;
      st.claim = call("ClaimVisit", {}, pageToken).then(
        (res) => {
          if (st.pageToken === pageToken && typeof res.visitToken === "string") st.token = res.visitToken;
        },
        (err: unknown) => console.debug("lethe: claim visit:", err),
      );
    },
    token: () => st.token,
    claimed: () => st.claim,
    forget() {
      st.pageToken = st.token = "";
    },
    async answerInvitation(invitationId, accepted) {
      await st.claim;
      if (!st.token) return;
      try {
        await call("RespondToInvitation", { invitationId, accepted }, st.token);
      } catch (err) {
        console.debug("lethe: invitation answer:", err);
      }
    },
  };
}

/**
 * What the pages of a signed-in console work with: one client per service,
 * all on one transport (the console's own origin, carrying the session
 * cookie), and the shell's way of reporting a failed call.
 */
import {
  AccountService,
  ChatService,
  ConsentService,
  FileService,
  MonitorService,
  createClient,
  createLetheTransport,
  type Client,
} from "@lethe/sdk";
import { PrivacyService } from "../../gen/ts/lethe/privacy/v1/privacy_pb";

export interface Api {
  readonly chat: Client<typeof ChatService>;
  readonly account: Client<typeof AccountService>;
  readonly consent: Client<typeof ConsentService>;
  readonly monitor: Client<typeof MonitorService>;
  readonly files: Client<typeof FileService>;
  readonly privacy: Client<typeof PrivacyService>;
}

export function createApi(baseUrl: string): Api {
  const transport = createLetheTransport(baseUrl);
  return {
    chat: createClient(ChatService, transport),
    account: createClient(AccountService, transport),
    consent: createClient(ConsentService, transport),
    monitor: createClient(MonitorService, transport),
    files: createClient(FileService, transport),
    privacy: createClient(PrivacyService, transport),
  };
}

/** What every page of a signed-in console gets from the shell around it. */
export interface PageContext {
  readonly api: Api;
  /** Aborts on sign-out: streams end, timers stop, late answers are ignored. */
  readonly signal: AbortSignal;
  /** Shows a failed call's message, or signs out if the session is gone. */
  fail(err: unknown): void;
  /** Clears the message of an earlier failure (after a call succeeded). */
  clearError(): void;
}

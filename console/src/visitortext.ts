/**
 * How the console describes a visitor in words: browser and system, place,
 * the detail fields, the state of an invitation. Pure, and unit-tested
 * (visitortext.test.ts). Empty values are left out, so a visitor whose IP the
 * account hides (P5) simply has no IP line.
 */
import { InvitationState, type InvitationStatus, type Visitor } from "@lethe/sdk";
import { timeOfDay } from "./format";

const join = (parts: Array<string | undefined>, sep: string) => parts.filter(Boolean).join(sep);

/** browserOs is "Chrome 120 on Linux", or "Unknown browser". */
export function browserOs(v: Visitor): string {
  return join([join([v.browser, v.browserVersion], " "), v.os], " on ") || "Unknown browser";
}

/** place is "City, Country" as far as known. */
export function place(v: Visitor): string {
  const l = v.location;
  return l ? join([l.city, l.country || l.countryCode], ", ") : "";
}

/** hasData says whether the website attached custom data to the visitor. */
export function hasData(v: Visitor): boolean {
  return Object.keys(v.pageData).length > 0 || Object.keys(v.verifiedData).length > 0;
}

/** detailFields lists what is known of a visitor as [test id, name, value], known values only. */
export function detailFields(v: Visitor): Array<[string, string, string]> {
  const loc = v.location;
  const fields: Array<[string, string, string]> = [
    ["ip", "IP address", v.ip],
    ["host", "Host", v.host],
    ["location", "Location", loc ? join([join([loc.city, loc.region, loc.country], ", "), loc.postalCode], " · ") : ""],
    ["isp", "ISP", v.isp],
    ["browser", "Browser", join([v.browser, v.browserVersion], " ")],
    ["os", "Operating system", v.os],
    ["device", "Device", v.device],
    ["referrer", "Came from", v.pages[0]?.page?.referrer ?? ""],
  ];
  return fields.filter(([, , value]) => value);
}

/** The state of a visitor's latest invitation, as the page's data-state says it. */
export type InvitationShown = "none" | "sent" | "accepted" | "declined" | "ignored";

/** invitationText says where the visitor's latest invitation is. */
export function invitationText(inv: InvitationStatus | undefined): [InvitationShown, string] {
  if (!inv) return ["none", "Not invited yet."];
  const by = join([inv.operatorName && `by ${inv.operatorName}`, inv.sentAt && `at ${timeOfDay(inv.sentAt, true)}`], " ");
  switch (inv.state) {
    case InvitationState.PENDING:
      return ["sent", `Invitation sent ${by}, waiting for an answer.`];
    case InvitationState.ACCEPTED:
      return ["accepted", `Invitation accepted (sent ${by}).`];
    case InvitationState.DECLINED:
      return ["declined", `Invitation declined (sent ${by}).`];
    case InvitationState.IGNORED:
      return ["ignored", `Invitation ignored: no answer within 2 minutes (sent ${by}).`];
    default:
      return ["none", "Not invited yet."];
  }
}

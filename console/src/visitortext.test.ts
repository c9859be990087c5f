// How a visitor is described: what is shown, and what is left out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvitationState, VisitorSchema, create } from "@lethe/sdk";
import { browserOs, detailFields, hasData, invitationText, place } from "./visitortext";

test("browser and system read as one phrase, with a fallback", () => {
  assert.equal(browserOs(create(VisitorSchema, { browser: "Chrome", browserVersion: "120", os: "Linux" })), "Chrome 120 on Linux");
  assert.equal(browserOs(create(VisitorSchema, { os: "Linux" })), "Linux");
  assert.equal(browserOs(create(VisitorSchema, {})), "Unknown browser");
});

test("place prefers the country name over its code", () => {
  assert.equal(place(create(VisitorSchema, { location: { city: "Bern", country: "Switzerland", countryCode: "CH" } })), "Bern, Switzerland");
  assert.equal(place(create(VisitorSchema, { location: { countryCode: "CH" } })), "CH");
  assert.equal(place(create(VisitorSchema, {})), "");
});

test("detail fields leave out what is not known, so a hidden IP has no line", () => {
  const hidden = create(VisitorSchema, { browser: "Firefox", os: "Windows", ip: "", host: "" });
  assert.deepEqual(detailFields(hidden).map(([key]) => key), ["browser", "os"]);
  const shown = create(VisitorSchema, {
    ip: "203.0.113.9",
    location: { city: "Bern", region: "BE", country: "Switzerland", postalCode: "3000" },
    pages: [{ page: { url: "/", referrer: "https://search.example/" } }],
  });
  assert.deepEqual(detailFields(shown), [
    ["ip", "IP address", "203.0.113.9"],
    ["location", "Location", "Bern, BE, Switzerland · 3000"],
    ["referrer", "Came from", "https://search.example/"],
  ]);
});

test("custom data from the page or a verified ticket marks the visitor", () => {
  assert.equal(hasData(create(VisitorSchema, {})), false);
  assert.equal(hasData(create(VisitorSchema, { pageData: { cart: "3" } })), true);
  assert.equal(hasData(create(VisitorSchema, { verifiedData: { customer: "C-1" } })), true);
});

test("an invitation's state is named for the page and said in words", () => {
  assert.deepEqual(invitationText(undefined), ["none", "Not invited yet."]);
  const inv = (state: InvitationState) => invitationText({ $typeName: "lethe.monitor.v1.InvitationStatus", invitationId: "i", operatorId: "o", operatorName: "Ann", message: "Hi", state });
  assert.deepEqual(inv(InvitationState.PENDING), ["sent", "Invitation sent by Ann, waiting for an answer."]);
  assert.deepEqual(inv(InvitationState.ACCEPTED), ["accepted", "Invitation accepted (sent by Ann)."]);
  assert.deepEqual(inv(InvitationState.DECLINED), ["declined", "Invitation declined (sent by Ann)."]);
  assert.equal(inv(InvitationState.IGNORED)[0], "ignored");
  assert.equal(inv(InvitationState.UNSPECIFIED)[0], "none");
});

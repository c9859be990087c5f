import assert from "node:assert/strict";
import { test } from "node:test";
import { PRECHAT, type StartConfig, type StartView, nextStartView, startLayout } from "./start-state";

const online: StartConfig = { online: true, offlineEnabled: true };
const offline: StartConfig = { online: false, offlineEnabled: true };
const noOffline: StartConfig = { online: false, offlineEnabled: false };
const offlineForm: StartView = { kind: "offline", chosen: false };
const chosen: StartView = { kind: "offline", chosen: true };
const sent: StartView = { kind: "sent" };

test("nextStartView follows the operators' presence and the visitor's choices", () => {
  const cases: [string, StartView, StartConfig, boolean, StartView][] = [
    ["online: the pre-chat form", PRECHAT, online, false, PRECHAT],
    ["nobody online: the offline form", PRECHAT, offline, false, offlineForm],
    ["offline messages off: only the pre-chat form", offlineForm, noOffline, false, PRECHAT],
    ["offline messages off, after sending one", sent, { online: true, offlineEnabled: false }, false, PRECHAT],
    ["an operator comes back: back to the live chat", offlineForm, online, false, PRECHAT],
    ["an operator comes back while the visitor writes: stay", offlineForm, online, true, offlineForm],
    ["the visitor chose the offline form: stay", chosen, online, false, chosen],
    ["the message was sent: stay", sent, online, false, sent],
    ["the message was sent and nobody is online: stay", sent, offline, false, sent],
    ["still nobody online: stay", chosen, offline, false, chosen],
  ];
  for (const [name, from, cfg, touched, want] of cases) assert.deepEqual(nextStartView(from, cfg, touched), want, name);
});

test("startLayout: online, the pre-chat form with a way to the offline form", () => {
  assert.deepEqual(startLayout(PRECHAT, online), {
    notice: "none",
    prechat: true,
    prechatDisabled: false,
    chooseOffline: true,
    offlineForm: false,
    sent: false,
    chooseChat: false,
    subtitle: "We typically reply in a few minutes",
    poll: false,
  });
});

test("startLayout: nobody online and no offline messages, the pre-chat form greyed out while polling", () => {
  const l = startLayout(PRECHAT, noOffline);
  assert.equal(l.notice, "wait");
  assert.equal(l.prechat, true);
  assert.equal(l.prechatDisabled, true);
  assert.equal(l.chooseOffline, false);
  assert.equal(l.subtitle, "Offline");
  assert.equal(l.poll, true);
});

test("startLayout: the offline form offers the live chat only while an operator is online", () => {
  const off = startLayout(offlineForm, offline);
  assert.equal(off.notice, "form");
  assert.equal(off.prechat, false);
  assert.equal(off.offlineForm, true);
  assert.equal(off.chooseChat, false);
  assert.equal(startLayout(chosen, online).chooseChat, true);
  const done = startLayout(sent, online);
  assert.equal(done.sent, true);
  assert.equal(done.offlineForm, false);
  assert.equal(done.chooseChat, true);
});

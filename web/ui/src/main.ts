// kolokol's browser softphone: signs in with the web account, takes its SIP credentials
// from the server (never typed), registers with JsSIP over (secure) WebSocket, and places,
// answers, holds, mutes and sends DTMF on calls whose media kolokol anchors and records.

import * as JsSIP from "jssip";

type Me = {
  login: string;
  name: string;
  extension: string;
  realm: string;
  /** This session's key: digest username and HA1, valid over WebSocket only. */
  sip_username: string;
  ha1: string;
  ice_servers: RTCIceServer[];
};

type Operator = { id: string; state: string; reason?: string; in_state_ms: number };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers: Record<string, string> = init.body ? { "Content-Type": "application/json" } : {};
  return fetch(path, { credentials: "same-origin", ...init, headers });
}

let me: Me;
let ua: JsSIP.UA | undefined;
let session: any;
let held = false;
let muted = false;

// ---- audio: devices, processing switches (KAW 12.2), remote playback, ring ----

function audioConstraints(): MediaTrackConstraints {
  const mic = $<HTMLSelectElement>("microphone").value;
  const on = (id: string) => $<HTMLInputElement>(id).checked;
  return {
    deviceId: mic ? { exact: mic } : undefined,
    echoCancellation: on("echoCancellation"),
    noiseSuppression: on("noiseSuppression"),
    autoGainControl: on("autoGainControl"),
  };
}

function callOptions() {
  return {
    mediaConstraints: { audio: audioConstraints(), video: false },
    pcConfig: { iceServers: me.ice_servers },
    rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
  };
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (id: string, kind: MediaDeviceKind) => {
    const select = $<HTMLSelectElement>(id);
    const chosen = select.value || localStorage.getItem(id) || "";
    select.replaceChildren(
      ...devices
        .filter((d) => d.kind === kind)
        .map((d, i) => new Option(d.label || `${kind} ${i + 1}`, d.deviceId)),
    );
    if (chosen) select.value = chosen;
  };
  fill("microphone", "audioinput");
  fill("speaker", "audiooutput");
  fill("ringer", "audiooutput");
}

async function routeOutput(element: HTMLAudioElement, selectId: string) {
  const sink = $<HTMLSelectElement>(selectId).value;
  const el = element as HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> };
  if (sink && el.setSinkId) await el.setSinkId(sink).catch(() => undefined);
}

/// A ring: 425 Hz, 1 s on / 3 s off, as a WAV the ringer device plays.
function ringTone(): string {
  const rate = 8000;
  const samples = new Int16Array(rate * 4);
  for (let i = 0; i < rate; i++) samples[i] = Math.sin((2 * Math.PI * 425 * i) / rate) * 8000;
  const header = new DataView(new ArrayBuffer(44));
  const text = (o: number, s: string) => [...s].forEach((c, i) => header.setUint8(o + i, c.charCodeAt(0)));
  text(0, "RIFF"); header.setUint32(4, 36 + samples.byteLength, true); text(8, "WAVE");
  text(12, "fmt "); header.setUint32(16, 16, true); header.setUint16(20, 1, true);
  header.setUint16(22, 1, true); header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true); header.setUint16(34, 16, true);
  text(36, "data"); header.setUint32(40, samples.byteLength, true);
  return URL.createObjectURL(new Blob([header, samples], { type: "audio/wav" }));
}

function ringing(on: boolean) {
  const ring = $<HTMLAudioElement>("ring");
  if (on) {
    routeOutput(ring, "ringer").then(() => ring.play().catch(() => undefined));
  } else {
    ring.pause();
    ring.currentTime = 0;
  }
}

// ---- calls ----

function showCall(state: string | null) {
  $("in-call").hidden = state === null;
  $("call-state").textContent = state ?? "";
  if (state === null) {
    $("incoming").hidden = true;
    session = undefined;
    held = muted = false;
    $("hold").textContent = "Удержание";
    $("mute").textContent = "Микрофон выкл.";
  }
}

function attach(s: any) {
  session = s;
  const play = (pc: RTCPeerConnection) =>
    pc.addEventListener("track", (e: RTCTrackEvent) => {
      const remote = $<HTMLAudioElement>("remote");
      remote.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      routeOutput(remote, "speaker");
    });
  if (s.connection) play(s.connection);
  s.on("peerconnection", (e: { peerconnection: RTCPeerConnection }) => play(e.peerconnection));
  s.on("progress", () => showCall("Вызов…"));
  s.on("accepted", () => { ringing(false); $("incoming").hidden = true; showCall("Разговор"); });
  s.on("confirmed", () => showCall("Разговор"));
  s.on("hold", () => showCall("На удержании"));
  s.on("unhold", () => showCall("Разговор"));
  s.on("ended", () => { ringing(false); showCall(null); });
  s.on("failed", () => { ringing(false); showCall(null); });
}

function startPhone() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new JsSIP.WebSocketInterface(`${scheme}://${location.host}/sip`);
  ua = new JsSIP.UA({
    sockets: [socket],
    uri: `sip:${me.extension}@${location.hostname}`,
    authorization_user: me.sip_username,
    realm: me.realm,
    ha1: me.ha1,
    display_name: me.name,
    register: true,
    session_timers: false,
    user_agent: "kolokol-softphone",
  } as any);
  const registered = (on: boolean, text: string) => {
    const el = $("registration");
    el.textContent = text;
    el.className = on ? "on" : "off";
  };
  ua.on("registered", () => registered(true, "зарегистрирован в телефонии"));
  ua.on("unregistered", () => registered(false, "не зарегистрирован в телефонии"));
  ua.on("registrationFailed", (e: any) => registered(false, `регистрация не удалась: ${e.cause}`));
  ua.on("newRTCSession", (e: any) => {
    if (session) {
      if (e.originator === "remote") e.session.terminate({ status_code: 486 });
      return;
    }
    attach(e.session);
    if (e.originator === "remote") {
      $("caller").textContent = e.request.from.display_name || e.request.from.uri.user;
      $("incoming").hidden = false;
      ringing(true);
    }
  });
  ua.start();
  window.addEventListener("beforeunload", () => ua?.stop());
}

// ---- operator state (SPEC §1.5) ----

async function refreshOperator() {
  const r = await api("/api/v1/operators");
  if (!r.ok) return;
  const mine = ((await r.json()) as Operator[]).find((o) => o.id === me.login);
  $("operator-state").textContent = mine
    ? mine.state + (mine.reason ? ` (${mine.reason})` : "")
    : "не оператор очереди";
}

async function operator(action: string, body?: object) {
  const r = await api(`/api/v1/operators/${encodeURIComponent(me.login)}/${action}`, {
    method: "POST",
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) {
    const problem = await r.json().catch(() => ({}));
    alert(problem.detail ?? r.statusText);
  }
  await refreshOperator();
}

async function startOperator() {
  const reasons = await api("/api/v1/pause-reasons");
  if (reasons.ok) {
    $<HTMLSelectElement>("reason").replaceChildren(
      ...((await reasons.json()) as string[]).map((n) => new Option(n, n)),
    );
  }
  $("work").onclick = async () => {
    const state = $("operator-state").textContent ?? "";
    await operator(state.startsWith("paused") ? "resume" : "login");
  };
  $("pause").onclick = () => operator("pause", { reason: $<HTMLSelectElement>("reason").value });
  $("logout-day").onclick = () => operator("logout");
  await refreshOperator();
  // Live state: every stored queue/operator event of ours triggers a refresh.
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const live = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
  live.onmessage = () => refreshOperator();
  setInterval(refreshOperator, 15000);
}

// ---- wiring ----

function wire() {
  $("call").onclick = () => {
    const number = $<HTMLInputElement>("number").value.trim();
    if (!number || !ua || session) return;
    attach(ua.call(`sip:${number}@${location.hostname}`, callOptions()));
    showCall("Вызов…");
  };
  $("answer").onclick = () => session?.answer(callOptions());
  $("reject").onclick = () => session?.terminate({ status_code: 486 });
  $("hangup").onclick = () => session?.terminate();
  $("hold").onclick = () => {
    if (!session) return;
    held ? session.unhold() : session.hold();
    held = !held;
    $("hold").textContent = held ? "Снять с удержания" : "Удержание";
  };
  $("mute").onclick = () => {
    if (!session) return;
    muted ? session.unmute({ audio: true }) : session.mute({ audio: true });
    muted = !muted;
    $("mute").textContent = muted ? "Микрофон вкл." : "Микрофон выкл.";
  };
  const pad = $("dialpad");
  for (const key of "123456789*0#") {
    const b = document.createElement("button");
    b.textContent = key;
    b.onclick = () => {
      if (session?.isEstablished()) session.sendDTMF(key, { transportType: "RFC2833" });
      else $<HTMLInputElement>("number").value += key;
    };
    pad.append(b);
  }
  for (const id of ["microphone", "speaker", "ringer"]) {
    $<HTMLSelectElement>(id).onchange = (e) => {
      localStorage.setItem(id, (e.target as HTMLSelectElement).value);
      if (id === "speaker") routeOutput($<HTMLAudioElement>("remote"), "speaker");
    };
  }
  $<HTMLAudioElement>("ring").src = ringTone();
  navigator.mediaDevices?.addEventListener("devicechange", listDevices);
}

async function enter(): Promise<boolean> {
  const r = await api("/api/v1/me/softphone");
  if (!r.ok) return false;
  me = await r.json();
  $("login").hidden = true;
  $("phone").hidden = false;
  $("who").textContent = `${me.name} (${me.extension})`;
  await navigator.mediaDevices.getUserMedia({ audio: true }).then((s) => s.getTracks().forEach((t) => t.stop())).catch(() => undefined);
  await listDevices();
  startPhone();
  await startOperator();
  return true;
}

$<HTMLFormElement>("login").onsubmit = async (e) => {
  e.preventDefault();
  const form = new FormData(e.target as HTMLFormElement);
  const r = await api("/api/v1/session", {
    method: "POST",
    body: JSON.stringify({ login: form.get("login"), password: form.get("password") }),
  });
  if (!r.ok || !(await enter())) {
    $("login-error").textContent = r.ok ? "нет телефонного номера" : "неверный логин или пароль";
  }
};

// Hooks for the browser tests: what the page is doing, and WebRTC's own numbers.
(window as any).kolokol = {
  registered: () => ua?.isRegistered() ?? false,
  inCall: () => session?.isEstablished() ?? false,
  session: () => session,
  inboundAudio: async () => {
    const pc: RTCPeerConnection | undefined = session?.connection;
    if (!pc) return null;
    let found: any = null;
    (await pc.getStats()).forEach((s: any) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") found = s;
    });
    return found && {
      packetsReceived: found.packetsReceived,
      audioLevel: found.audioLevel ?? 0,
      totalAudioEnergy: found.totalAudioEnergy ?? 0,
    };
  },
};

wire();
enter();

/**
 * The queue chime. Browsers let audio start only after a user gesture, so
 * the audio context is prepared on the first click or key press; until then
 * (or without Web Audio) the chime is silent.
 */

export interface Chime {
  /** beep plays a short two-tone chime, if audio is allowed. */
  beep(): void;
}

export function createChime(doc: Document): Chime {
  const state: { audio: AudioContext | undefined } = { audio: undefined };
  const prime = () => {
    try {
      state.audio ??= new AudioContext();
      if (state.audio.state === "suspended") void state.audio.resume();
    } catch {
      // No Web Audio: the chime stays silent.
    }
  };
  doc.addEventListener("pointerdown", prime, { once: true });
  doc.addEventListener("keydown", prime, { once: true });
  return {
    beep() {
      const audio = state.audio;
      try {
        if (!audio || audio.state !== "running") return;
        const t = audio.currentTime;
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.setValueAtTime(880, t);
        osc.frequency.setValueAtTime(1320, t + 0.09);
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.22);
        osc.connect(gain).connect(audio.destination);
        osc.start(t);
        osc.stop(t + 0.24);
      } catch {
        // Best effort.
      }
    },
  };
}

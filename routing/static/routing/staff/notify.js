// Opt-in sound and desktop notifications for new offers. Both start off: a console that beeps
// unasked in a quiet reading room is a console librarians close.

const KEY = "vr-staff-notify";

export class Notifier {
  constructor() {
    let saved = {};
    try {
      saved = JSON.parse(localStorage.getItem(KEY) || "{}");
    } catch (e) {
      saved = {};
    }
    this.sound = !!saved.sound;
    this.desktop = !!saved.desktop && "Notification" in window && Notification.permission === "granted";
    this.audio = null;
  }

  save() {
    localStorage.setItem(KEY, JSON.stringify({ sound: this.sound, desktop: this.desktop }));
  }

  setSound(on) {
    this.sound = on;
    if (on && !this.audio && window.AudioContext) this.audio = new AudioContext(); // made in the click
    this.save();
  }

  async setDesktop(on) {
    if (on && "Notification" in window) {
      const permission = Notification.permission === "default" ? await Notification.requestPermission()
        : Notification.permission;
      this.desktop = permission === "granted";
    } else {
      this.desktop = false;
    }
    this.save();
    return this.desktop;
  }

  beep() {
    if (!this.sound) return;
    if (!this.audio && window.AudioContext) this.audio = new AudioContext();
    const ctx = this.audio;
    if (!ctx) return;
    for (const [offset, freq] of [[0, 880], [0.18, 660]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.12, ctx.currentTime + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + offset + 0.15);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + offset);
      osc.stop(ctx.currentTime + offset + 0.16);
    }
  }

  show(title, body, onClick) {
    if (!this.desktop || !("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus()) return; // they can see it already
    const n = new Notification(title, { body, tag: "vr-offer" });
    n.onclick = () => {
      window.focus();
      if (onClick) onClick();
      n.close();
    };
  }
}

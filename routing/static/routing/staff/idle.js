// Notices a console left alone: no key, click, pointer or touch for `seconds` calls onIdle once,
// so that a forgotten "available" console does not make the service look staffed.

const EVENTS = ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"];

export class IdleWatch {
  constructor(seconds, onIdle) {
    this.seconds = seconds;
    this.onIdle = onIdle;
    this.last = Date.now();
    this.fired = false;
    const touch = () => {
      this.last = Date.now();
      this.fired = false;
    };
    for (const name of EVENTS) window.addEventListener(name, touch, { passive: true, capture: true });
    this.timer = setInterval(() => this.check(), 1000);
  }

  setSeconds(seconds) {
    this.seconds = seconds;
    this.last = Date.now();
    this.fired = false;
  }

  check() {
    if (!this.seconds || this.fired) return;
    if (Date.now() - this.last >= this.seconds * 1000) {
      this.fired = true;
      this.onIdle(this.seconds);
    }
  }
}

// A loop's wake-up: `wake()` ends the current (or the next) `wait(ms)` at
// once; otherwise the wait ends after `ms`. A wake with nobody waiting is
// kept for the next wait, so none is lost between a loop's checks. The
// producer (queue claims) and the pipeline runner each wait on one.
export class WakeSignal {
  private pending = false;
  private waiter?: () => void;

  wake(): void {
    if (this.waiter) this.waiter();
    else this.pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiter = undefined;
        this.pending = false;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiter = done;
    });
  }
}

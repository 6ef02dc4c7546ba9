import { RequestOne } from '@nats-io/nats-core/internal';

/**
 * nats.js 3.4 (`@nats-io/nats-core`, `RequestOne.resolver`) ends every answered request by calling
 * `cancel()`, which rejects the already-resolved promise with a new `RequestError("cancelled")`: an
 * Error, with its stack trace captured, allocated after every successful request and thrown away.
 * Every JetStream and KV operation is such a request, so on a gateway node on NATS this was 10% of
 * the CPU (docs/performance.md §7). This replaces the success path only: resolve, stop the timer,
 * leave the mux, exactly what `cancel()` did minus the discarded rejection. Errors, timeouts and
 * explicit cancels run the library's own code. Installed once; skipped (returns false) if the class
 * no longer has the shape this was written against, so a changed library runs unpatched.
 */
interface Patchable {
  resolver(this: RequestOne, err: Error | null, msg: unknown): void;
}

let installed: boolean | undefined;

export function installNatsRequestFix(): boolean {
  if (installed !== undefined) return installed;
  const proto = RequestOne.prototype as unknown as Patchable & { cancel?: unknown };
  const original = proto.resolver;
  if (typeof original !== 'function' || typeof proto.cancel !== 'function' || original.length !== 2) {
    installed = false;
    return installed;
  }
  proto.resolver = function resolver(this: RequestOne, err: Error | null, msg: unknown): void {
    if (err) {
      original.call(this, err, msg);
      return;
    }
    this.timer?.cancel();
    this.deferred.resolve(msg as never);
    this.mux.cancel(this);
  };
  installed = true;
  return installed;
}

/** True once the fix is in place (for tests and diagnostics). */
export function natsRequestFixInstalled(): boolean {
  return installed === true;
}

/**
 * A heartbeat that visits every member once per `intervalMs`, spread over the interval: members are
 * dealt into slots (up to 20, ticks at least 50 ms apart) and one slot is visited per tick. Visiting
 * all members in one turn costs a socket write each, all at once, and their peers answer at once: in
 * the latency benchmark the burst of 1000 pings made whichever trial it fell in the slowest one.
 */
export class SpreadHeartbeat<T> {
  readonly #slots: Set<T>[];
  readonly #slotOf = new Map<T, Set<T>>();
  readonly #timer: NodeJS.Timeout;
  #next = 0;
  #tick = 0;

  constructor(intervalMs: number, visit: (member: T) => void) {
    const slots = heartbeatSlots(intervalMs);
    this.#slots = Array.from({ length: slots }, () => new Set<T>());
    this.#timer = setInterval(() => {
      for (const member of this.#slots[this.#tick++ % slots]!) visit(member);
    }, intervalMs / slots);
    this.#timer.unref();
  }

  /** Adds a member; its first visit comes within one interval. */
  add(member: T): void {
    if (this.#slotOf.has(member)) return;
    const slot = this.#slots[this.#next++ % this.#slots.length]!;
    slot.add(member);
    this.#slotOf.set(member, slot);
  }

  delete(member: T): void {
    this.#slotOf.get(member)?.delete(member);
    this.#slotOf.delete(member);
  }

  /** Stops visiting and forgets every member. */
  stop(): void {
    clearInterval(this.#timer);
    for (const slot of this.#slots) slot.clear();
    this.#slotOf.clear();
  }
}

/** Slots an interval is cut into: up to 20, at least 50 ms apart (a short interval gets fewer, down to one). */
export function heartbeatSlots(intervalMs: number): number {
  return Math.max(1, Math.min(20, Math.floor(intervalMs / 50)));
}

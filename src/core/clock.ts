/** Injected everywhere time matters, so tests control it (DESIGN.md §5: never sleep to wait). */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs (): number
}

export const systemClock: Clock = { nowMs: () => Date.now() }

/** A clock tests can move by hand. */
export class ManualClock implements Clock {
  #ms: number
  constructor (startMs = Date.UTC(2026, 0, 1)) { this.#ms = startMs }
  nowMs (): number { return this.#ms }
  advance (ms: number): void { this.#ms += ms }
  set (ms: number): void { this.#ms = ms }
}

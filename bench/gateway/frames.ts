/**
 * The benchmark processes' MQTT framing: cuts a byte stream into whole control packets from the fixed header and
 * its Remaining Length (MQTT 5 §1.5.5), with no general-purpose parser, so the load generator and the Node floor
 * cost as little as possible per packet. Not for untrusted input: there is no size limit.
 */

/** Receives one whole frame: `b[start]` is its first byte, the body is `b[body … body + len)`. */
export type FrameHandler = (b: Buffer, start: number, body: number, len: number) => void

/** A `data` listener that calls `onFrame` for every whole frame and keeps an incomplete tail for the next chunk. */
export function mqttFrames (onFrame: FrameHandler): (chunk: Buffer) => void {
  let rest: Buffer | undefined
  return (chunk: Buffer): void => {
    const b = rest === undefined ? chunk : Buffer.concat([rest, chunk])
    rest = undefined
    let i = 0
    while (b.length - i >= 2) {
      let len = 0
      let mul = 1
      let j = i + 1
      let complete = false
      for (; j < b.length && j < i + 5; j++) {
        len += (b[j] & 0x7f) * mul
        mul *= 128
        if ((b[j] & 0x80) === 0) { complete = true; j++; break }
      }
      if (!complete || b.length - j < len) break
      onFrame(b, i, j, len)
      i = j + len
    }
    if (i < b.length) rest = Buffer.from(b.subarray(i))
  }
}

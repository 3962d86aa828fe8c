/**
 * The benchmark processes' MQTT framing: the gateway's own FrameReader (a frame that arrives whole is a view of
 * its chunk; one that straddles chunks is copied once, alone), with a callback shape the load generator, the
 * Node floor and the schema bench share.
 */
import { FrameReader } from '../../src/gateway/framing.ts'

/** Receives one whole frame: `b[start]` is its first byte, the body is `b[body … body + len)`. */
export type FrameHandler = (b: Buffer, start: number, body: number, len: number) => void

/** The largest Remaining Length a fixed header can carry (MQTT 5 §1.5.5): the bench trusts its peers. */
const MAX_FRAME_BYTES = 268_435_455 + 5

/** A `data` listener that calls `onFrame` for every whole frame and keeps an incomplete tail for the next chunk. */
export function mqttFrames (onFrame: FrameHandler): (chunk: Buffer) => void {
  const reader = new FrameReader(MAX_FRAME_BYTES)
  const sink = (frame: Buffer, headerBytes: number): boolean => {
    onFrame(frame, 0, headerBytes, frame.length - headerBytes)
    return true
  }
  return (chunk: Buffer): void => {
    const err = reader.push(chunk, sink)
    if (err !== undefined) throw new Error(`bench framing: ${err}`)
  }
}

/**
 * Shadow names and reserved topics (IoT DG `device-shadow-mqtt`): `$aws/things/{thing}/shadow/{op}` for the
 * classic shadow, `$aws/things/{thing}/shadow/name/{shadow}/{op}` for a named one.
 */
import { iotArn } from '../core/index.ts'
import type { ArnContext } from '../core/index.ts'

/** Thing names as the registry allows them (AWS: `[a-zA-Z0-9:_-]+`, 1–128). */
export const THING_NAME_RE = /^[a-zA-Z0-9:_-]{1,128}$/
/** Shadow names (AWS iot-data `ShadowName`: `[$a-zA-Z0-9:_-]+`, 1–64). */
export const SHADOW_NAME_RE = /^[$a-zA-Z0-9:_-]{1,64}$/

/** Which shadow: the classic (unnamed) one when `shadowName` is undefined. */
export interface ShadowTarget {
  readonly thingName: string
  readonly shadowName?: string
}

/** The operations a device requests by publishing. */
export const ShadowOperation = { Get: 'get', Update: 'update', Delete: 'delete' } as const
export type ShadowOperation = (typeof ShadowOperation)[keyof typeof ShadowOperation]

/** A parsed request topic. */
export interface ShadowTopicRequest {
  readonly target: ShadowTarget
  readonly operation: ShadowOperation
}

const THINGS_PREFIX = '$aws/things/'

/** `$aws/things/{thing}/shadow` or `$aws/things/{thing}/shadow/name/{shadow}`. */
export function shadowTopicPrefix (target: ShadowTarget): string {
  return target.shadowName === undefined
    ? `${THINGS_PREFIX}${target.thingName}/shadow`
    : `${THINGS_PREFIX}${target.thingName}/shadow/name/${target.shadowName}`
}

/**
 * The IAM resource of a shadow (IoT DG `policy-actions`: iot:Get/Update/DeleteThingShadow): `thing/{thing}` for
 * the classic shadow, `thing/{thing}/{shadowName}` for a named one. Also the target of shadow audit events.
 */
export function shadowArn (ctx: ArnContext, thingName: string, shadowName: string | undefined): string {
  return iotArn(ctx, 'thing', shadowName === undefined ? thingName : `${thingName}/${shadowName}`)
}

/**
 * Parses a request topic (`…/get`, `…/update`, `…/delete`). Response topics (`…/accepted`, `…/rejected`,
 * `…/delta`, `…/documents`), other `$aws/things/…` services and malformed names give undefined.
 */
export function parseShadowRequestTopic (topic: string): ShadowTopicRequest | undefined {
  if (!topic.startsWith(THINGS_PREFIX)) return undefined
  const parts = topic.slice(THINGS_PREFIX.length).split('/')
  if (parts.length < 3 || parts[1] !== 'shadow') return undefined
  const thingName = parts[0]
  if (!THING_NAME_RE.test(thingName)) return undefined
  let op: string
  let shadowName: string | undefined
  if (parts.length === 3) op = parts[2]
  else if (parts.length === 5 && parts[2] === 'name') {
    shadowName = parts[3]
    if (!SHADOW_NAME_RE.test(shadowName)) return undefined
    op = parts[4]
  } else return undefined
  if (op !== 'get' && op !== 'update' && op !== 'delete') return undefined
  return { target: shadowName === undefined ? { thingName } : { thingName, shadowName }, operation: op }
}

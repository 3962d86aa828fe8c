import { InvalidRequestError } from '../core/index.ts'

/** AWS IoT name rules (botocore service-2.json patterns for ThingName, ThingGroupName, ThingTypeName, PolicyName). */
const THING_NAME = /^[a-zA-Z0-9:_-]+$/
const POLICY_NAME = /^[\w+=,.@-]+$/
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]+$/
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]*$/

export function checkName (kind: 'thingName' | 'thingTypeName' | 'thingGroupName', value: unknown): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 128 || !THING_NAME.test(value)) {
    throw new InvalidRequestError(`${kind} must be 1-128 characters of [a-zA-Z0-9:_-]`, { field: kind })
  }
  return value
}

export function checkPolicyName (value: unknown): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 128 || !POLICY_NAME.test(value)) {
    throw new InvalidRequestError('policyName must be 1-128 characters of [a-zA-Z0-9_+=,.@-]', { field: 'policyName' })
  }
  return value
}

/**
 * Thing and group attributes: names ≤128 chars, values ≤800 chars, AWS's character sets. A thing without a type
 * may hold 3 attributes, with a type 50 (AWS IoT quotas, "Thing attributes").
 */
export function checkAttributes (value: unknown, max: number, field = 'attributes'): Record<string, string> {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidRequestError('attributes must be an object of strings', { field })
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.length > 128 || !ATTRIBUTE_NAME.test(k)) throw new InvalidRequestError('attribute name must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]', { field, attribute: k.slice(0, 128) })
    if (typeof v !== 'string' || v.length > 800 || !ATTRIBUTE_VALUE.test(v)) throw new InvalidRequestError('attribute value must be a string of at most 800 characters of [a-zA-Z0-9_.,@/:#=[]-]', { field, attribute: k })
    out[k] = v
  }
  if (Object.keys(out).length > max) throw new InvalidRequestError(`at most ${max} attributes are allowed here`, { field })
  return out
}

export const MAX_ATTRIBUTES_UNTYPED = 3
export const MAX_ATTRIBUTES_TYPED = 50

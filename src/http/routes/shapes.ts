import type { FastifyRequest } from 'fastify'
import { InvalidRequestError } from '../../core/index.ts'

/** AWS rest-json timestamps are epoch seconds (botocore "timestampFormat": "unixTimestamp"). */
export const epoch = (ms: number | undefined): number | undefined => ms === undefined ? undefined : ms / 1000

type Query = Record<string, string | string[] | undefined>
export const query = (req: FastifyRequest): Query => req.query as Query

export function qString (req: FastifyRequest, name: string): string | undefined {
  const v = query(req)[name]
  if (Array.isArray(v)) throw new InvalidRequestError('query parameter given more than once', { field: name })
  return v === undefined || v === '' ? undefined : v
}

export function qInt (req: FastifyRequest, name: string): number | undefined {
  const v = qString(req, name)
  if (v === undefined) return undefined
  if (!/^-?\d{1,10}$/.test(v)) throw new InvalidRequestError('query parameter must be an integer', { field: name })
  return Number(v)
}

export function qBool (req: FastifyRequest, name: string): boolean | undefined {
  const v = qString(req, name)
  if (v === undefined) return undefined
  if (v === 'true') return true
  if (v === 'false') return false
  throw new InvalidRequestError('query parameter must be true or false', { field: name })
}

export const params = (req: FastifyRequest): Record<string, string> => req.params as Record<string, string>

/** Drops undefined fields so responses carry only what exists, as AWS does. */
export function compact<T extends Record<string, unknown>> (o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k]
  return o
}

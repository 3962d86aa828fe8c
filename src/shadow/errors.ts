import { AppError } from '../core/index.ts'
import type { ErrorCode } from '../core/index.ts'

/**
 * The Device Shadow service's error texts, verbatim from AWS (IoT DG `device-shadow-error-messages`). Clients
 * match on them, so they are part of the wire format: never reword one.
 */
export const ShadowErrorMessage = {
  InvalidJson: 'Invalid JSON',
  MissingState: 'Missing required node: state',
  StateNotObject: 'State node must be an object',
  DesiredNotObject: 'Desired node must be an object',
  ReportedNotObject: 'Reported node must be an object',
  InvalidVersion: 'Invalid version',
  InvalidClientToken: 'Invalid clientToken',
  TooDeep: 'JSON contains too many levels of nesting; maximum is 6',
  InvalidNode: 'State contains an invalid node',
  ThingNotFound: 'Thing not found',
  NoShadow: 'No shadow exists with name',
  VersionConflict: 'Version conflict',
  TooLarge: 'The payload exceeds the maximum size allowed',
  Encoding: 'Unsupported documented encoding; supported encoding is UTF-8',
  TooManyRequests: 'Too many requests',
  Internal: 'Internal service failure',
  // Our extension (GET ?maxAgeSeconds=N): fixed texts naming the rule.
  Stale: 'Reported state is older than maxAgeSeconds',
  NoReportedState: 'The shadow has no reported state, so its age is unknown',
} as const
export type ShadowErrorMessage = (typeof ShadowErrorMessage)[keyof typeof ShadowErrorMessage]

/** The error codes a shadow operation can end with, and the HTTP status AWS uses for each (the `code` on /rejected). */
export const SHADOW_ERROR_STATUS = {
  ERR_SHADOW_INVALID_REQUEST: 400,
  ERR_SHADOW_NOT_FOUND: 404,
  ERR_SHADOW_VERSION_CONFLICT: 409,
  ERR_SHADOW_STALE: 412,
  ERR_SHADOW_TOO_LARGE: 413,
  ERR_SHADOW_UNSUPPORTED_ENCODING: 415,
  ERR_SHADOW_THROTTLED: 429,
} as const satisfies Partial<Record<ErrorCode, number>>
export type ShadowErrorCode = keyof typeof SHADOW_ERROR_STATUS

/**
 * A refused shadow request. `message` is one of AWS's fixed texts ({@link ShadowErrorMessage}); the thing and
 * shadow names go in `details`, never in the message (DESIGN.md §5).
 */
export class ShadowError extends AppError {
  /** The HTTP status AWS gives this error; also the `code` of the MQTT /rejected document. */
  readonly status: number
  constructor (code: ShadowErrorCode, message: ShadowErrorMessage, details: Record<string, string | number> = {}) {
    super(code, message, details)
    this.status = SHADOW_ERROR_STATUS[code]
  }
}

/** `400 Bad Request` with one of AWS's texts. */
export const invalidRequest = (message: ShadowErrorMessage, details: Record<string, string | number> = {}): ShadowError =>
  new ShadowError('ERR_SHADOW_INVALID_REQUEST', message, details)

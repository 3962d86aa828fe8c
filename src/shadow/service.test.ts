/** The /rejected wire mapping: every error with a shadow code through the one status table, anything else 500. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AppError } from '../core/index.ts'
import { ShadowError, ShadowErrorMessage, invalidRequest } from './errors.ts'
import { checkTarget, wireError } from './service.ts'

const refusal = (fn: () => unknown): unknown => { try { fn() } catch (err) { return err } return undefined }

test('wireError: AWS statuses and texts; our own name refusals are 400; everything else is a 500 with a fixed text', () => {
  const cases: Array<[unknown, { status: number, message: string }]> = [
    [new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.NoShadow, { thingName: 'lamp', shadowName: 'cfg' }), { status: 404, message: "No shadow exists with name: 'cfg'" }],
    [new ShadowError('ERR_SHADOW_NOT_FOUND', ShadowErrorMessage.ThingNotFound, { thingName: 'lamp' }), { status: 404, message: 'Thing not found' }],
    [new ShadowError('ERR_SHADOW_VERSION_CONFLICT', ShadowErrorMessage.VersionConflict), { status: 409, message: 'Version conflict' }],
    [new ShadowError('ERR_SHADOW_THROTTLED', ShadowErrorMessage.TooManyRequests), { status: 429, message: 'Too many requests' }],
    [invalidRequest(ShadowErrorMessage.InvalidJson), { status: 400, message: 'Invalid JSON' }],
    [refusal(() => checkTarget({ thingName: 'no spaces' })), { status: 400, message: 'invalid thing name' }],
    [refusal(() => checkTarget({ thingName: 'lamp', shadowName: 'a/b' })), { status: 400, message: 'invalid shadow name' }],
    [new AppError('ERR_STORAGE_CORRUPT', 'stored shadow does not match its row'), { status: 500, message: 'Internal service failure' }],
    [new Error('boom'), { status: 500, message: 'Internal service failure' }],
    ['not an error', { status: 500, message: 'Internal service failure' }],
  ]
  for (const [err, want] of cases) assert.deepEqual(wireError(err), want, String(err))
})

import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { AppError, newAccessKeyId, newSecretAccessKey } from '../core/index.ts'
import { describeDecision } from '../policy/index.ts'
import { assumedRoleArn, checkSessionName, iamArn, parseRoleArn } from './arns.ts'
import type { IamAuthorizer } from './authorizer.ts'
import { IAM_CACHE_MAX_AGE_MS } from './authorizer.ts'
import { findRole } from './builtin.ts'
import type { IamDeps } from './context.ts'
import { auditChange, commitKeepingCaches } from './context.ts'
import { noSuchEntity } from './errors.ts'
import { verifyDummy, verifyPassword } from './password.ts'
import type { IamUnit } from './ports.ts'
import type { AuthThrottle } from './throttle.ts'
import { base32Decode, base32Encode, hashRecoveryCode, newRecoveryCodes, newTotpSecret, otpauthUri, verifyTotp } from './totp.ts'
import { evaluateTrust, parseTrustPolicy } from './trust.ts'
import type { IamCaller, MfaDevice, Principal, SessionOrigin, StsSession } from './types.ts'

/** Temporary credentials as STS returns them. */
export interface TemporaryCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken: string
  readonly expirationMs: number
}

/** Session lifetimes (issue #5: 15 minutes to 12 hours; AWS STS `DurationSeconds` bounds and defaults). */
export const SESSION_MIN_SEC = 900
export const SESSION_MAX_SEC = 43_200
/** AWS GetSessionToken default for IAM users: 43,200 s (12 h). */
export const GET_SESSION_TOKEN_DEFAULT_SEC = 43_200
/** AWS AssumeRole default: 3,600 s; role chaining is limited to 1 hour (IAM UG `id_roles_terms-and-concepts`, "Role chaining"). */
export const ASSUME_ROLE_DEFAULT_SEC = 3600
export const ROLE_CHAINING_MAX_SEC = 3600
/** Password sign-in sessions: 1 hour unless asked otherwise. */
export const LOGIN_DEFAULT_SEC = 3600
/** Expired sessions are kept a day, so their use is reported as ExpiredToken rather than as an unknown key. */
const EXPIRED_SESSION_KEEP_MS = 24 * 3600_000

const sessionSecretContext = (accessKeyId: string): Record<string, string> => ({ purpose: 'session-secret', accessKeyId })
const totpContext = (userName: string): Record<string, string> => ({ purpose: 'totp-secret', userName })

/** Request facts every STS/sign-in operation records. */
export interface RequestMeta { readonly sourceIp?: string, readonly requestId?: string }

/** Outcome of a password sign-in. */
export type LoginResult =
  | { readonly status: 'OK', readonly userName: string, readonly credentials: TemporaryCredentials, readonly recoveryCodes?: readonly string[] }
  /** First sign-in: scan the URI (or type the secret) into an authenticator app, then sign in again with a code. Shown once per enrollment attempt. */
  | { readonly status: 'MFA_ENROLLMENT_REQUIRED', readonly userName: string, readonly serialNumber: string, readonly otpauthUri: string, readonly secretBase32: string }
  /** The password was right; a TOTP code or a recovery code is needed. */
  | { readonly status: 'MFA_REQUIRED', readonly userName: string }

const accessDenied = (message: string, details: Record<string, string | number> = {}): AppError => new AppError('ERR_AUTH_ACCESS_DENIED', message, details)
const SIGN_IN_FAILED = 'sign-in failed: the user name, password or MFA code is not valid'
const MFA_FAILED = 'MultiFactorAuthentication failed with invalid MFA one time pass code'

function duration (v: unknown, dflt: number, max: number, field: string): number {
  if (v === undefined) return Math.min(dflt, max)
  const n = typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < SESSION_MIN_SEC || n > max) {
    throw new AppError('ERR_IAM_INVALID_INPUT', `${field} must be an integer from ${SESSION_MIN_SEC} to ${max} seconds`, { field, max })
  }
  return n
}

interface CachedSession { readonly session: StsSession, readonly secret: string, readonly generation: number, readonly loadedMs: number }

/**
 * Temporary credentials (STS GetSessionToken, AssumeRole), password sign-in with TOTP MFA (RFC 6238) and
 * recovery codes, and MFA device enrollment (issue #5). Session secrets are sealed; session tokens are stored as
 * SHA-256 digests. Failed passwords and MFA codes are throttled per user and per address with lockout, and
 * every refusal and lockout is audited.
 */
export class StsService {
  readonly #d: IamDeps
  readonly #authorizer: IamAuthorizer
  readonly #throttle: AuthThrottle
  readonly #sessions = new Map<string, CachedSession>()
  constructor (deps: IamDeps, authorizer: IamAuthorizer, throttle: AuthThrottle) {
    this.#d = deps
    this.#authorizer = authorizer
    this.#throttle = throttle
  }

  mfaSerial (userName: string): string { return iamArn(this.#d.arn.accountId, 'mfa', userName) }

  // ---- MFA devices ------------------------------------------------------------------------------------------

  /**
   * Starts a virtual MFA device enrollment (IAM CreateVirtualMFADevice): a new secret, pending until a valid code
   * proves the user's app has it. Refused when an active device exists (deactivating one is an administrator's
   * act), so a stolen access key cannot replace a user's MFA.
   */
  async createVirtualMfa (caller: IamCaller, userName: string): Promise<{ serialNumber: string, otpauthUri: string, secretBase32: string }> {
    return commitKeepingCaches(this.#d, async (u) => {
      if (await u.store.getUser(userName) === undefined) throw noSuchEntity('user', userName)
      const existing = await u.store.getMfaDevice(userName)
      if (existing?.status === 'active') throw new AppError('ERR_IAM_ENTITY_EXISTS', 'the user already has an active MFA device', { resourceType: 'MFA device', resourceId: userName })
      return this.#newPendingDevice(u, caller, userName)
    })
  }

  async #newPendingDevice (u: IamUnit, caller: IamCaller, userName: string): Promise<{ serialNumber: string, otpauthUri: string, secretBase32: string }> {
    const secret = newTotpSecret()
    const device: MfaDevice = {
      userName, sealedSecret: this.#d.sealer.encrypt(secret, totpContext(userName)), status: 'pending', lastStep: 0,
      createdMs: this.#d.clock.nowMs(), enabledMs: undefined,
    }
    await u.store.putMfaDevice(device)
    await auditChange(u, caller, 'iam.CreateVirtualMFADevice', iamArn(this.#d.arn.accountId, 'user', userName), { serialNumber: this.mfaSerial(userName) })
    const issuer = this.#d.totpIssuer ?? 'Thingward'
    return { serialNumber: this.mfaSerial(userName), otpauthUri: otpauthUri(issuer, userName, secret), secretBase32: base32Encode(secret) }
  }

  /** IAM EnableMFADevice: a valid code from the pending device activates it; returns new recovery codes (once). */
  async enableMfa (caller: IamCaller, userName: string, code: unknown): Promise<{ serialNumber: string, recoveryCodes: string[] }> {
    const meta = { sourceIp: caller.sourceIp, requestId: caller.requestId }
    const locked = this.#throttle.locked(`user:${userName}`, caller.sourceIp)
    if (locked !== undefined) throw await this.#lockedOut(userName, meta, locked.scope)
    const result = await commitKeepingCaches(this.#d, async (u) => {
      const dev = await u.store.getMfaDevice(userName)
      if (dev === undefined || dev.status !== 'pending') throw new AppError('ERR_IAM_NO_SUCH_ENTITY', 'no MFA enrollment is pending for the user', { resourceType: 'MFA device', resourceId: userName })
      const step = typeof code === 'string' ? verifyTotp(this.#d.sealer.decrypt(dev.sealedSecret, totpContext(userName)), code, this.#d.clock.nowMs(), dev.lastStep) : undefined
      if (step === undefined) return undefined
      return this.#activate(u, caller, dev, step)
    })
    if (result === undefined) {
      await this.#failure(userName, meta, 'iam.EnableMFADevice', 'invalid-mfa-code')
      throw accessDenied(MFA_FAILED)
    }
    return { serialNumber: this.mfaSerial(userName), recoveryCodes: result }
  }

  async #activate (u: IamUnit, caller: IamCaller, dev: MfaDevice, step: number): Promise<string[]> {
    const now = this.#d.clock.nowMs()
    await u.store.putMfaDevice({ ...dev, status: 'active', lastStep: step, enabledMs: now })
    const codes = newRecoveryCodes()
    await u.store.putRecoveryCodes(dev.userName, codes.map(hashRecoveryCode), now)
    await auditChange(u, caller, 'iam.EnableMFADevice', iamArn(this.#d.arn.accountId, 'user', dev.userName), { serialNumber: this.mfaSerial(dev.userName), recoveryCodes: codes.length })
    return codes
  }

  /**
   * Checks an MFA code for a user inside a unit of work: a TOTP code from the active device (accepted once), or
   * an unused recovery code (consumed). False when neither.
   */
  async #checkMfa (u: IamUnit, userName: string, totpCode: string | undefined, recoveryCode: string | undefined): Promise<boolean> {
    const dev = await u.store.getMfaDevice(userName)
    if (dev === undefined || dev.status !== 'active') return false
    const now = this.#d.clock.nowMs()
    if (totpCode !== undefined) {
      const step = verifyTotp(this.#d.sealer.decrypt(dev.sealedSecret, totpContext(userName)), totpCode, now, dev.lastStep)
      if (step === undefined) return false
      await u.store.putMfaDevice({ ...dev, lastStep: step })
      return true
    }
    if (recoveryCode !== undefined && await u.store.useRecoveryCode(userName, hashRecoveryCode(recoveryCode), now)) {
      await u.audit.append({ action: 'iam.UseRecoveryCode', actor: `user/${userName}`, outcome: 'success', target: iamArn(this.#d.arn.accountId, 'user', userName), details: { remaining: await u.store.countUnusedRecoveryCodes(userName) } })
      return true
    }
    return false
  }

  // ---- Failures and lockout ---------------------------------------------------------------------------------

  async #failure (userName: string, meta: RequestMeta, action: string, reason: string): Promise<void> {
    const outcome = this.#throttle.fail(`user:${userName}`, meta.sourceIp)
    await this.#d.record({
      action, actor: `user/${userName}`, outcome: 'denied', kind: 'request', target: iamArn(this.#d.arn.accountId, 'user', userName),
      sourceIp: meta.sourceIp, requestId: meta.requestId, errorCode: 'ERR_AUTH_ACCESS_DENIED', reason,
    })
    if (outcome.lockedPrincipalUntilMs !== undefined || outcome.lockedAddressUntilMs !== undefined) {
      await this.#d.record({
        action: 'iam.Lockout', actor: 'system', outcome: 'denied', kind: 'request', target: iamArn(this.#d.arn.accountId, 'user', userName),
        sourceIp: meta.sourceIp, requestId: meta.requestId, reason: 'too-many-failures',
        details: { credential: 'password-or-mfa', ...outcome },
      })
    }
  }

  async #lockedOut (userName: string, meta: RequestMeta, scope: 'principal' | 'address'): Promise<AppError> {
    await this.#d.record({
      action: 'iam.Login', actor: `user/${userName}`, outcome: 'denied', kind: 'request', target: iamArn(this.#d.arn.accountId, 'user', userName),
      sourceIp: meta.sourceIp, requestId: meta.requestId, errorCode: 'ERR_AUTH_LOCKED_OUT', reason: `locked-out-${scope}`,
    })
    return new AppError('ERR_AUTH_LOCKED_OUT', 'too many failed attempts: try again later')
  }

  /** Ends a user's lockout early (administrators). */
  async unlock (caller: IamCaller, userName: string): Promise<void> {
    this.#throttle.unlock(`user:${userName}`)
    await this.#d.record({ action: 'iam.Unlock', actor: caller.actor, outcome: 'success', kind: 'request', target: iamArn(this.#d.arn.accountId, 'user', userName), sourceIp: caller.sourceIp, requestId: caller.requestId })
  }

  // ---- Sessions ---------------------------------------------------------------------------------------------

  async #issue (u: IamUnit, s: Omit<StsSession, 'accessKeyId' | 'sealedSecret' | 'tokenHash' | 'createdMs' | 'expiresMs'>, durationSec: number): Promise<TemporaryCredentials> {
    const now = this.#d.clock.nowMs()
    const accessKeyId = newAccessKeyId('ASIA')
    const secretAccessKey = newSecretAccessKey()
    // An opaque bearer value: 384 random bits. Only its SHA-256 is stored.
    const sessionToken = `TW${randomBytes(48).toString('base64url')}`
    const session: StsSession = {
      ...s, accessKeyId, sealedSecret: this.#d.sealer.encrypt(Buffer.from(secretAccessKey), sessionSecretContext(accessKeyId)),
      tokenHash: hash('sha256', sessionToken, 'hex'), createdMs: now, expiresMs: now + durationSec * 1000,
    }
    await u.store.deleteExpiredSessions(now - EXPIRED_SESSION_KEEP_MS)
    await u.store.putSession(session)
    return { accessKeyId, secretAccessKey, sessionToken, expirationMs: session.expiresMs }
  }

  /**
   * STS GetSessionToken: temporary credentials for the calling user, with MFA when `serialNumber` and
   * `tokenCode` are given (then aws:MultiFactorAuthPresent is true for the session). As in AWS it must be called
   * with the user's long-term key, not with temporary credentials.
   */
  async getSessionToken (caller: Principal, input: { durationSeconds?: unknown, serialNumber?: unknown, tokenCode?: unknown }, meta: RequestMeta): Promise<TemporaryCredentials> {
    if (caller.type !== 'User' || caller.temporary) throw accessDenied('Cannot call GetSessionToken with session credentials')
    const durationSec = duration(input.durationSeconds, GET_SESSION_TOKEN_DEFAULT_SEC, SESSION_MAX_SEC, 'DurationSeconds')
    const code = await this.#mfaInput('sts.GetSessionToken', caller.name, input.serialNumber, input.tokenCode, meta)
    const result = await commitKeepingCaches(this.#d, async (u) => {
      if (code !== undefined && !await this.#checkMfa(u, caller.name, code, undefined)) return undefined
      const creds = await this.#issue(u, {
        principalType: 'user', principalName: caller.name, sessionName: undefined, sourceUser: caller.name, mfa: code !== undefined,
        mfaMs: code !== undefined ? this.#d.clock.nowMs() : undefined, origin: 'GetSessionToken', sourceIp: meta.sourceIp,
      }, durationSec)
      await auditChange(u, { actor: caller.actor, ...meta }, 'sts.GetSessionToken', iamArn(this.#d.arn.accountId, 'user', caller.name), {
        sessionAccessKeyId: creds.accessKeyId, callerAccessKeyId: caller.accessKeyId, mfa: code !== undefined, expiration: new Date(creds.expirationMs).toISOString(),
      })
      return creds
    })
    if (result === undefined) {
      await this.#failure(caller.name, meta, 'sts.GetSessionToken', 'invalid-mfa-code')
      throw accessDenied(MFA_FAILED)
    }
    return result
  }

  /** Validates SerialNumber/TokenCode: both or neither, the serial must be the user's device. Resolves the code. */
  async #mfaInput (action: string, userName: string, serial: unknown, code: unknown, meta: RequestMeta): Promise<string | undefined> {
    if (serial === undefined && code === undefined) return undefined
    if (typeof serial !== 'string' || typeof code !== 'string') throw new AppError('ERR_IAM_INVALID_INPUT', 'SerialNumber and TokenCode go together', { field: 'TokenCode' })
    if (!/^\d{6}$/.test(code)) throw new AppError('ERR_IAM_INVALID_INPUT', 'TokenCode must be 6 digits', { field: 'TokenCode' })
    const locked = this.#throttle.locked(`user:${userName}`, meta.sourceIp)
    if (locked !== undefined) throw await this.#lockedOut(userName, meta, locked.scope)
    if (serial !== this.mfaSerial(userName)) {
      await this.#failure(userName, meta, action, 'unknown-mfa-serial')
      throw accessDenied(MFA_FAILED)
    }
    return code
  }

  /**
   * STS AssumeRole. Allowed when the role's trust policy allows the caller (IAM UG `id_roles_compare-resource-policies`):
   * a statement naming the caller suffices; one naming the account (or `*`) also needs the caller's identity
   * policy to allow sts:AssumeRole on the role; any matching Deny refuses. MFA comes from `tokenCode` or from the
   * calling session. Session policies and session tags are refused rather than ignored (ignoring them would grant
   * more than the caller asked for).
   */
  async assumeRole (caller: Principal, input: {
    roleArn?: unknown, roleSessionName?: unknown, durationSeconds?: unknown, serialNumber?: unknown, tokenCode?: unknown, externalId?: unknown,
    unsupported?: readonly string[]
  }, meta: RequestMeta & { secureTransport: boolean }): Promise<{ credentials: TemporaryCredentials, assumedRoleArn: string, assumedRoleId: string }> {
    if (input.unsupported !== undefined && input.unsupported.length > 0) {
      throw new AppError('ERR_IAM_INVALID_INPUT', 'session policies, policy ARNs and session tags are not supported', { field: input.unsupported[0] })
    }
    if (typeof input.roleArn !== 'string' || input.roleArn.length < 20 || input.roleArn.length > 2048) throw new AppError('ERR_IAM_INVALID_INPUT', 'RoleArn is required', { field: 'RoleArn' })
    const sessionName = checkSessionName(input.roleSessionName)
    const roleArn = input.roleArn
    const parsed = parseRoleArn(roleArn)
    const role = parsed === undefined || parsed.accountId !== this.#d.arn.accountId ? undefined : await this.#d.storage.read(s => findRole(s, parsed.roleName, this.#d.arn.accountId))
    const chained = caller.type === 'AssumedRole'
    const maxSec = chained ? Math.min(ROLE_CHAINING_MAX_SEC, role?.maxSessionSec ?? ROLE_CHAINING_MAX_SEC) : (role?.maxSessionSec ?? SESSION_MAX_SEC)
    const durationSec = duration(input.durationSeconds, ASSUME_ROLE_DEFAULT_SEC, maxSec, 'DurationSeconds')
    const code = caller.type === 'User' ? await this.#mfaInput('sts.AssumeRole', caller.name, input.serialNumber, input.tokenCode, meta) : undefined
    if (caller.type !== 'User' && (input.serialNumber !== undefined || input.tokenCode !== undefined)) {
      throw new AppError('ERR_IAM_INVALID_INPUT', 'TokenCode is accepted only from users; an assumed-role session carries its MFA state', { field: 'TokenCode' })
    }
    const deny = async (reason: string, statement?: string): Promise<never> => {
      await this.#d.record({
        action: 'sts.AssumeRole', actor: caller.actor, outcome: 'denied', kind: 'request', target: roleArn, sourceIp: meta.sourceIp, requestId: meta.requestId,
        errorCode: 'ERR_AUTH_ACCESS_DENIED', reason, ...(statement === undefined ? {} : { statement }),
      })
      throw accessDenied(`User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, { action: 'sts:AssumeRole' })
    }
    if (role === undefined || parsed === undefined) return deny('no-such-role')
    // The MFA state of this request: a code given now, else the calling session's (absent for long-term keys).
    const now = this.#d.clock.nowMs()
    const acting: Principal = code !== undefined ? { ...caller, mfa: true, mfaMs: now } : caller
    const mfa = acting.mfa === true
    const facts = { sourceIp: meta.sourceIp, secureTransport: meta.secureTransport }
    const context = {
      ...this.#authorizer.principalContext(caller.type === 'User' ? 'user' : 'role', caller.name, caller.tags),
      ...this.#authorizer.requestContext(acting, facts),
      ...(typeof input.externalId === 'string' ? { 'sts:ExternalId': input.externalId } : {}),
    }
    const callerArns = caller.type === 'User' ? [caller.arn] : [caller.arn, iamArn(this.#d.arn.accountId, 'role', caller.name)]
    const trust = evaluateTrust(parseTrustPolicy(role.trustPolicy), roleArn, callerArns, this.#d.arn.accountId, context)
    if (trust.explicitDeny) return deny('trust-policy-deny')
    const identity = await this.#authorizer.authorize(acting, 'sts:AssumeRole', roleArn, facts)
    if (identity.effect === 'explicitDeny') return deny('identity-policy-deny', describeDecision(identity))
    if (!trust.allowedDirectly && !(trust.allowedForAccount && identity.allowed)) {
      return deny(trust.allowedForAccount ? 'identity-policy-no-allow' : 'trust-policy-no-allow', describeDecision(identity))
    }
    const result = await commitKeepingCaches(this.#d, async (u) => {
      if (code !== undefined && !await this.#checkMfa(u, caller.name, code, undefined)) return undefined
      const credentials = await this.#issue(u, {
        principalType: 'role', principalName: role.name, sessionName, sourceUser: caller.sourceUser, mfa,
        mfaMs: mfa ? acting.mfaMs : undefined, origin: 'AssumeRole', sourceIp: meta.sourceIp,
      }, durationSec)
      await auditChange(u, { actor: caller.actor, ...meta }, 'sts.AssumeRole', roleArn, {
        sessionAccessKeyId: credentials.accessKeyId, roleSessionName: sessionName, mfa, expiration: new Date(credentials.expirationMs).toISOString(),
        ...(identity.allowed ? { statement: describeDecision(identity) } : {}),
      })
      return credentials
    })
    if (result === undefined) {
      await this.#failure(caller.name, meta, 'sts.AssumeRole', 'invalid-mfa-code')
      throw accessDenied(MFA_FAILED)
    }
    return { credentials: result, assumedRoleArn: assumedRoleArn(this.#d.arn.accountId, role.name, sessionName), assumedRoleId: `${role.id}:${sessionName}` }
  }

  // ---- Password sign-in -------------------------------------------------------------------------------------

  /**
   * Password sign-in (CLI and console). The password is checked first (scrypt, constant time; unknown users
   * cost the same). A user without an MFA device is enrolled at the first sign-in: the answer carries a new
   * TOTP secret, and the sign-in completes only when it is repeated with a valid code from it; recovery codes are
   * returned then, once. Afterwards every sign-in needs a TOTP code or a recovery code, so password sessions
   * always have aws:MultiFactorAuthPresent = true.
   */
  async login (input: { userName?: unknown, password?: unknown, totpCode?: unknown, recoveryCode?: unknown, durationSeconds?: unknown }, meta: RequestMeta): Promise<LoginResult> {
    if (typeof input.userName !== 'string' || input.userName.length === 0 || input.userName.length > 64) throw new AppError('ERR_IAM_INVALID_INPUT', 'userName is required', { field: 'userName' })
    if (typeof input.password !== 'string' || input.password.length === 0 || input.password.length > 1024) throw new AppError('ERR_IAM_INVALID_INPUT', 'password is required', { field: 'password' })
    for (const f of ['totpCode', 'recoveryCode'] as const) {
      if (input[f] !== undefined && (typeof input[f] !== 'string' || input[f].length > 64)) throw new AppError('ERR_IAM_INVALID_INPUT', `${f} must be a string`, { field: f })
    }
    const totpCode = input.totpCode as string | undefined
    const recoveryCode = input.recoveryCode as string | undefined
    const durationSec = duration(input.durationSeconds, LOGIN_DEFAULT_SEC, SESSION_MAX_SEC, 'durationSeconds')
    const userName = input.userName
    const locked = this.#throttle.locked(`user:${userName}`, meta.sourceIp)
    if (locked !== undefined) throw await this.#lockedOut(userName, meta, locked.scope)

    const user = await this.#d.storage.read(s => s.getUser(userName))
    const passwordOk = user?.passwordHash === undefined ? await verifyDummy(input.password, this.#d.scryptLogN) : await verifyPassword(input.password, user.passwordHash)
    if (user === undefined || !passwordOk) {
      await this.#failure(userName, meta, 'iam.Login', user === undefined ? 'unknown-user' : 'bad-password')
      throw accessDenied(SIGN_IN_FAILED)
    }
    const caller: IamCaller = { actor: `user/${userName}`, ...meta }
    type Outcome = LoginResult | { readonly status: 'BAD_MFA' }
    const outcome: Outcome = await commitKeepingCaches(this.#d, async (u): Promise<Outcome> => {
      const dev = await u.store.getMfaDevice(userName)
      let recoveryCodes: string[] | undefined
      if (dev === undefined || dev.status === 'pending') {
        const step = dev !== undefined && totpCode !== undefined
          ? verifyTotp(this.#d.sealer.decrypt(dev.sealedSecret, totpContext(userName)), totpCode, this.#d.clock.nowMs(), dev.lastStep)
          : undefined
        if (dev === undefined || totpCode === undefined) return { status: 'MFA_ENROLLMENT_REQUIRED', userName, ...await this.#newPendingDevice(u, caller, userName) }
        if (step === undefined) return { status: 'BAD_MFA' }
        recoveryCodes = await this.#activate(u, caller, dev, step)
      } else if (totpCode === undefined && recoveryCode === undefined) {
        return { status: 'MFA_REQUIRED', userName }
      } else if (!await this.#checkMfa(u, userName, totpCode, recoveryCode)) {
        return { status: 'BAD_MFA' }
      }
      const credentials = await this.#issue(u, {
        principalType: 'user', principalName: userName, sessionName: undefined, sourceUser: userName, mfa: true, mfaMs: this.#d.clock.nowMs(),
        origin: 'Login', sourceIp: meta.sourceIp,
      }, durationSec)
      await auditChange(u, caller, 'iam.Login', iamArn(this.#d.arn.accountId, 'user', userName), {
        sessionAccessKeyId: credentials.accessKeyId, mfa: recoveryCode !== undefined && totpCode === undefined ? 'recovery-code' : 'totp',
        expiration: new Date(credentials.expirationMs).toISOString(),
      })
      return { status: 'OK', userName, credentials, ...(recoveryCodes === undefined ? {} : { recoveryCodes }) }
    })
    if (outcome.status === 'BAD_MFA') {
      await this.#failure(userName, meta, 'iam.Login', 'invalid-mfa-code')
      throw accessDenied(SIGN_IN_FAILED)
    }
    if (outcome.status === 'OK') this.#throttle.succeed(`user:${userName}`)
    return outcome
  }

  // ---- Resolution (SigV4) -----------------------------------------------------------------------------------

  async #cached (accessKeyId: string): Promise<CachedSession | undefined> {
    const now = this.#d.clock.nowMs()
    const hit = this.#sessions.get(accessKeyId)
    if (hit !== undefined && hit.generation === this.#d.cache.generation && now - hit.loadedMs < IAM_CACHE_MAX_AGE_MS) return hit
    const generation = this.#d.cache.generation
    const session = await this.#d.storage.read(s => s.getSession(accessKeyId))
    if (session === undefined) { this.#sessions.delete(accessKeyId); return undefined }
    const c: CachedSession = { session, secret: this.#d.sealer.decrypt(session.sealedSecret, sessionSecretContext(accessKeyId)).toString(), generation, loadedMs: now }
    if (this.#sessions.size > 10_000) this.#sessions.clear()
    this.#sessions.set(accessKeyId, c)
    return c
  }

  /** The secret of a temporary key (expired ones included: expiry is reported after the signature checks out). */
  async sessionSecret (accessKeyId: string): Promise<string | undefined> {
    return (await this.#cached(accessKeyId))?.secret
  }

  /**
   * The principal of a temporary key whose signature was verified. Throws ERR_AUTH_INVALID_TOKEN when the session
   * token is missing or wrong or its principal is gone, ERR_AUTH_TOKEN_EXPIRED after expiry (AWS ExpiredToken).
   */
  async sessionPrincipal (accessKeyId: string, sessionToken: string | undefined): Promise<Principal> {
    const c = await this.#cached(accessKeyId)
    // Built only when thrown: this runs on every request signed with temporary credentials.
    const invalid = (): AppError => new AppError('ERR_AUTH_INVALID_TOKEN', 'the security token included in the request is invalid', { accessKeyId })
    if (c === undefined || sessionToken === undefined) throw invalid()
    const given = hash('sha256', sessionToken, 'buffer')
    const stored = Buffer.from(c.session.tokenHash, 'hex')
    if (stored.length !== given.length || !timingSafeEqual(given, stored)) throw invalid()
    const s = c.session
    if (this.#d.clock.nowMs() >= s.expiresMs) throw new AppError('ERR_AUTH_TOKEN_EXPIRED', 'the security token included in the request is expired', { accessKeyId })
    const view = await this.#authorizer.view(s.principalType, s.principalName)
    if (view === undefined) throw invalid()
    const acct = this.#d.arn.accountId
    const base = { accessKeyId, temporary: true, mfa: s.mfa, mfaMs: s.mfaMs, tokenIssueMs: s.createdMs, expiresMs: s.expiresMs, sourceUser: s.sourceUser, tags: view.tags }
    if (s.principalType === 'user') {
      return { ...base, type: 'User', arn: iamArn(acct, 'user', s.principalName), name: s.principalName, userId: view.id, actor: `user/${s.principalName}` }
    }
    const session = s.sessionName ?? 'session'
    return {
      ...base, type: 'AssumedRole', arn: assumedRoleArn(acct, s.principalName, session), name: s.principalName, userId: `${view.id}:${session}`,
      actor: `assumed-role/${s.principalName}/${session}`,
    }
  }

  /** Decodes a base32 secret typed by hand (tests and the CLI use it to compute codes). */
  static decodeSecret (secretBase32: string): Buffer | undefined { return base32Decode(secretBase32) }

  /** Where a session came from, for `whoami`. */
  async sessionOrigin (accessKeyId: string): Promise<SessionOrigin | undefined> { return (await this.#cached(accessKeyId))?.session.origin }
}

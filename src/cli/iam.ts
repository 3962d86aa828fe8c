import type { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { AppError, InvalidRequestError } from '../core/index.ts'
import type { ApiClient } from './client.ts'
import { seg } from './client.ts'
import type { CliIo } from './program.ts'

/** What the IAM commands borrow from program.ts. */
export interface IamCliContext {
  readonly io: CliIo
  /** A signed client (credentials from the environment). */
  readonly clientFor: (o: object) => ApiClient
  /** A client that may send unsigned requests (password sign-in needs no credentials). */
  readonly anonymousClientFor: (o: object) => ApiClient
  /** Adds --endpoint, --ca-file and --data to a command. */
  readonly apiOpts: (c: Command) => Command
}

/** Reads a secret from a file (`/dev/stdin` to pipe it) or an environment variable; never from argv (ps shows argv). */
function secretFrom (io: CliIo, file: string | undefined, envName: string, what: string): string {
  if (file !== undefined) return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
  const v = io.env[envName]
  if (v !== undefined && v !== '') return v
  throw new InvalidRequestError(`${what} is required: --${what}-file FILE (e.g. /dev/stdin) or ${envName}`, { field: what })
}

function keyValues (list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of list ?? []) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new InvalidRequestError(`${flag} must be given as key=value`, { field: flag })
    out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return out
}

const jsonFile = (file: string): unknown => {
  const text = readFileSync(file, 'utf8')
  try { return JSON.parse(text) } catch { throw new InvalidRequestError('the file is not valid JSON', { field: file }) }
}

/**
 * `thingward login` (password + TOTP sign-in, prints temporary credentials) and `thingward iam …`: users, access
 * keys, MFA, groups, roles, policies, simulation. Every command calls the API; the IAM action each needs is in
 * src/http/authorization.ts.
 */
export function registerIamCommands (program: Command, ctx: IamCliContext): void {
  const { io, clientFor, anonymousClientFor, apiOpts } = ctx
  const print = (v: unknown): void => { io.stdout(`${JSON.stringify(v, null, 2)}\n`) }
  const U = (name: string): string => `/thingward/iam/users/${seg(name)}`

  apiOpts(program.command('login')).description('sign in with a password and a TOTP code; prints temporary credentials (the first sign-in enrolls an authenticator app)')
    .requiredOption('--user <name>', 'IAM user name')
    .option('--password-file <file>', 'read the password from a file (/dev/stdin to pipe it); default THINGWARD_PASSWORD')
    .option('--totp <code>', 'the 6-digit code from the authenticator app')
    .option('--recovery-code <code>', 'a single-use recovery code instead of a TOTP code')
    .option('--duration <seconds>', 'session length, 900 to 43200 (default 3600)')
    .option('--json', 'print JSON for scripts')
    .action(async (o: { user: string, passwordFile?: string, totp?: string, recoveryCode?: string, duration?: string, json?: boolean }) => {
      const password = secretFrom(io, o.passwordFile, 'THINGWARD_PASSWORD', 'password')
      const r = await anonymousClientFor(o).call<Record<string, unknown>>('POST', '/thingward/login', {
        unsigned: true, body: { userName: o.user, password, totpCode: o.totp, recoveryCode: o.recoveryCode, durationSeconds: o.duration === undefined ? undefined : Number(o.duration) },
      })
      if (o.json === true) { print(r); return }
      if (r.status === 'MFA_ENROLLMENT_REQUIRED') {
        io.stdout(`MFA enrollment required (first sign-in). Add this account to an authenticator app (RFC 6238 TOTP):\n  ${String(r.otpauthUri)}\n  secret: ${String(r.secretBase32)}\nThen sign in again with --totp <code>. This secret is shown only now.\n`)
        return
      }
      if (r.status === 'MFA_REQUIRED') throw new AppError('ERR_AUTH_ACCESS_DENIED', 'an MFA code is required: pass --totp CODE (or --recovery-code CODE)')
      const c = r.credentials as Record<string, string>
      io.stdout(`export AWS_ACCESS_KEY_ID=${c.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${c.secretAccessKey}\nexport AWS_SESSION_TOKEN=${c.sessionToken}\n# expires ${c.expiration}\n`)
      if (Array.isArray(r.recoveryCodes)) {
        io.stderr(`MFA enrolled. Recovery codes (each works once; shown only now, store them offline):\n${r.recoveryCodes.map(x => `  ${String(x)}`).join('\n')}\n`)
      }
    })

  const iam = program.command('iam').description('operator identities: users, access keys, MFA, groups, roles, policies')
  apiOpts(iam.command('whoami')).description('the identity of the current credentials').action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/iam/whoami')) })
  apiOpts(iam.command('simulate')).description('evaluate actions for a user or role with its current policies')
    .option('--user <name>').option('--role <name>').requiredOption('--action <action...>', 'e.g. iot:CreateThing')
    .option('--resource <arn>', 'resource ARN (default *)').option('--context <key=value...>', 'condition keys, e.g. aws:MultiFactorAuthPresent=true')
    .action(async (o: { user?: string, role?: string, action: string[], resource?: string, context?: string[] }) => {
      const context = Object.fromEntries(Object.entries(keyValues(o.context, 'context')).map(([k, v]) => [k, v === 'true' ? true : v === 'false' ? false : v]))
      print(await clientFor(o).call('POST', '/thingward/iam/simulate', { body: { userName: o.user, roleName: o.role, actions: o.action, resource: o.resource, context } }))
    })

  // ---- users
  const users = iam.command('users').description('IAM users')
  apiOpts(users.command('create <name>')).option('--role <role...>', 'roles to assign (admin, operator, provisioner, auditor or custom)').option('--tag <k=v...>', 'principal tags')
    .action(async (name: string, o: { role?: string[], tag?: string[] }) => { print(await clientFor(o).call('POST', U(name), { body: { roles: o.role, tags: keyValues(o.tag, 'tag') } })) })
  apiOpts(users.command('list')).action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/iam/users')) })
  apiOpts(users.command('get <name>')).action(async (name: string, o: object) => { print(await clientFor(o).call('GET', U(name))) })
  apiOpts(users.command('delete <name>')).description('delete a user with its keys, MFA device and sessions')
    .action(async (name: string, o: object) => { await clientFor(o).call('DELETE', U(name)) })
  apiOpts(users.command('set-password <name>')).description('set a user\'s password (administrators); the user enrolls TOTP at the first sign-in')
    .option('--password-file <file>', 'read the password from a file (/dev/stdin to pipe it); default THINGWARD_PASSWORD')
    .action(async (name: string, o: { passwordFile?: string }) => {
      await clientFor(o).call('PUT', `${U(name)}/login-profile`, { body: { password: secretFrom(io, o.passwordFile, 'THINGWARD_PASSWORD', 'password') } })
    })
  apiOpts(users.command('remove-password <name>')).action(async (name: string, o: object) => { await clientFor(o).call('DELETE', `${U(name)}/login-profile`) })
  apiOpts(users.command('change-password <name>')).description('change your own password')
    .option('--old-password-file <file>').option('--new-password-file <file>')
    .action(async (name: string, o: { oldPasswordFile?: string, newPasswordFile?: string }) => {
      await clientFor(o).call('POST', `${U(name)}/password`, {
        body: { oldPassword: secretFrom(io, o.oldPasswordFile, 'THINGWARD_OLD_PASSWORD', 'old-password'), newPassword: secretFrom(io, o.newPasswordFile, 'THINGWARD_NEW_PASSWORD', 'new-password') },
      })
    })
  apiOpts(users.command('unlock <name>')).description('end a sign-in lockout early').action(async (name: string, o: object) => { await clientFor(o).call('POST', `${U(name)}/unlock`) })
  apiOpts(users.command('revoke-sessions <name>')).description('revoke every temporary credential of a user (and of roles they assumed)')
    .action(async (name: string, o: object) => { print(await clientFor(o).call('POST', `${U(name)}/revoke-sessions`)) })
  apiOpts(users.command('assign-role <user> <role>')).action(async (user: string, role: string, o: object) => { await clientFor(o).call('PUT', `${U(user)}/roles/${seg(role)}`) })
  apiOpts(users.command('unassign-role <user> <role>')).action(async (user: string, role: string, o: object) => { await clientFor(o).call('DELETE', `${U(user)}/roles/${seg(role)}`) })
  apiOpts(users.command('attach-policy <user> <policy>')).action(async (user: string, policy: string, o: object) => { await clientFor(o).call('PUT', `${U(user)}/policies/${seg(policy)}`) })
  apiOpts(users.command('detach-policy <user> <policy>')).action(async (user: string, policy: string, o: object) => { await clientFor(o).call('DELETE', `${U(user)}/policies/${seg(policy)}`) })

  // ---- access keys
  const keys = iam.command('keys').description('access keys (SigV4)')
  apiOpts(keys.command('create <user>')).description('create a key; the secret is printed once').action(async (user: string, o: object) => { print(await clientFor(o).call('POST', `${U(user)}/access-keys`)) })
  apiOpts(keys.command('list <user>')).description('keys with status and last use').action(async (user: string, o: object) => { print(await clientFor(o).call('GET', `${U(user)}/access-keys`)) })
  apiOpts(keys.command('last-used <user> <accessKeyId>')).action(async (user: string, id: string, o: object) => { print(await clientFor(o).call('GET', `${U(user)}/access-keys/${seg(id)}`)) })
  for (const [cmd, status] of [['activate', 'Active'], ['deactivate', 'Inactive']] as const) {
    apiOpts(keys.command(`${cmd} <user> <accessKeyId>`)).action(async (user: string, id: string, o: object) => {
      await clientFor(o).call('PATCH', `${U(user)}/access-keys/${seg(id)}`, { body: { status } })
    })
  }
  apiOpts(keys.command('delete <user> <accessKeyId>')).action(async (user: string, id: string, o: object) => { await clientFor(o).call('DELETE', `${U(user)}/access-keys/${seg(id)}`) })
  apiOpts(keys.command('rotate <user> <accessKeyId>')).description('create a new key and deactivate this one (delete it once nothing uses it)')
    .action(async (user: string, id: string, o: object) => { print(await clientFor(o).call('POST', `${U(user)}/access-keys/${seg(id)}/rotate`)) })

  // ---- MFA
  const mfa = iam.command('mfa').description('virtual MFA devices (TOTP, RFC 6238)')
  apiOpts(mfa.command('enroll <user>')).description('start an enrollment: prints the otpauth:// URI once').action(async (user: string, o: object) => { print(await clientFor(o).call('POST', `${U(user)}/mfa`)) })
  apiOpts(mfa.command('enable <user> <code>')).description('finish an enrollment with a code from the app: prints recovery codes once')
    .action(async (user: string, code: string, o: object) => { print(await clientFor(o).call('POST', `${U(user)}/mfa/enable`, { body: { code } })) })
  apiOpts(mfa.command('list <user>')).action(async (user: string, o: object) => { print(await clientFor(o).call('GET', `${U(user)}/mfa`)) })
  apiOpts(mfa.command('deactivate <user>')).description('remove a user\'s device and recovery codes (they enroll again at the next sign-in)')
    .action(async (user: string, o: object) => { await clientFor(o).call('DELETE', `${U(user)}/mfa`) })

  // ---- groups
  const G = (name: string): string => `/thingward/iam/groups/${seg(name)}`
  const groups = iam.command('groups').description('IAM groups')
  apiOpts(groups.command('create <name>')).action(async (name: string, o: object) => { print(await clientFor(o).call('POST', G(name))) })
  apiOpts(groups.command('list')).action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/iam/groups')) })
  apiOpts(groups.command('get <name>')).action(async (name: string, o: object) => { print(await clientFor(o).call('GET', G(name))) })
  apiOpts(groups.command('delete <name>')).action(async (name: string, o: object) => { await clientFor(o).call('DELETE', G(name)) })
  apiOpts(groups.command('add-user <group> <user>')).action(async (group: string, user: string, o: object) => { await clientFor(o).call('PUT', `${G(group)}/users/${seg(user)}`) })
  apiOpts(groups.command('remove-user <group> <user>')).action(async (group: string, user: string, o: object) => { await clientFor(o).call('DELETE', `${G(group)}/users/${seg(user)}`) })
  apiOpts(groups.command('attach-policy <group> <policy>')).action(async (group: string, policy: string, o: object) => { await clientFor(o).call('PUT', `${G(group)}/policies/${seg(policy)}`) })
  apiOpts(groups.command('detach-policy <group> <policy>')).action(async (group: string, policy: string, o: object) => { await clientFor(o).call('DELETE', `${G(group)}/policies/${seg(policy)}`) })

  // ---- roles
  const R = (name: string): string => `/thingward/iam/roles/${seg(name)}`
  const roles = iam.command('roles').description('roles (assigned to users, or assumed with STS AssumeRole)')
  apiOpts(roles.command('create <name>')).option('--trust-file <file>', 'trust policy JSON (default: this account)').option('--max-session <seconds>', '3600 to 43200')
    .option('--description <text>')
    .action(async (name: string, o: { trustFile?: string, maxSession?: string, description?: string }) => {
      print(await clientFor(o).call('POST', R(name), {
        body: { assumeRolePolicyDocument: o.trustFile === undefined ? undefined : jsonFile(o.trustFile), maxSessionDuration: o.maxSession === undefined ? undefined : Number(o.maxSession), description: o.description },
      }))
    })
  apiOpts(roles.command('list')).action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/iam/roles')) })
  apiOpts(roles.command('get <name>')).action(async (name: string, o: object) => { print(await clientFor(o).call('GET', R(name))) })
  apiOpts(roles.command('delete <name>')).action(async (name: string, o: object) => { await clientFor(o).call('DELETE', R(name)) })
  apiOpts(roles.command('set-trust <name> <file>')).action(async (name: string, file: string, o: object) => {
    await clientFor(o).call('PUT', `${R(name)}/trust-policy`, { body: { assumeRolePolicyDocument: jsonFile(file) } })
  })
  apiOpts(roles.command('attach-policy <role> <policy>')).action(async (role: string, policy: string, o: object) => { await clientFor(o).call('PUT', `${R(role)}/policies/${seg(policy)}`) })
  apiOpts(roles.command('detach-policy <role> <policy>')).action(async (role: string, policy: string, o: object) => { await clientFor(o).call('DELETE', `${R(role)}/policies/${seg(policy)}`) })

  // ---- policies
  const P = (name: string): string => `/thingward/iam/policies/${seg(name)}`
  const policies = iam.command('policies').description('identity policies (IAM JSON, evaluated by the policy engine)')
  apiOpts(policies.command('create <name> <file>')).option('--description <text>')
    .action(async (name: string, file: string, o: { description?: string }) => { print(await clientFor(o).call('POST', P(name), { body: { policyDocument: readFileSync(file, 'utf8'), description: o.description } })) })
  apiOpts(policies.command('update <name> <file>')).description('replace the document (takes effect on the next request)')
    .action(async (name: string, file: string, o: object) => { print(await clientFor(o).call('PUT', P(name), { body: { policyDocument: readFileSync(file, 'utf8') } })) })
  apiOpts(policies.command('list')).action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/iam/policies')) })
  apiOpts(policies.command('get <name>')).action(async (name: string, o: object) => { print(await clientFor(o).call('GET', P(name))) })
  apiOpts(policies.command('delete <name>')).action(async (name: string, o: object) => { await clientFor(o).call('DELETE', P(name)) })
}

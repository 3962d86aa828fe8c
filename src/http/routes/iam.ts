import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { AppError, isRecord } from '../../core/index.ts'
import type { AttachmentType, IamGroup, IamPolicy, IamRole, LoginResult, TemporaryCredentials } from '../../iam/index.ts'
import { describeDecision } from '../../policy/index.ts'
import type { ContextValue } from '../../policy/index.ts'
import { requirePrincipal } from '../authorization.ts'
import type { HttpDeps } from '../server.ts'
import { jsonBody } from '../server.ts'
import { params, qInt, qString } from './shapes.ts'

/**
 * Operator identities over HTTPS: our REST shape of the AWS IAM operations (each route's IAM action is in
 * ../authorization.ts), `whoami`, policy simulation, and password sign-in (`POST /thingward/login`, the one
 * unsigned route here). Timestamps are epoch milliseconds; `expiration` is ISO 8601 like STS.
 */

const credentialsShape = (c: TemporaryCredentials): Record<string, unknown> => ({
  accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expirationMs).toISOString(),
})

function loginShape (r: LoginResult): Record<string, unknown> {
  switch (r.status) {
    case 'OK': return { status: r.status, userName: r.userName, credentials: credentialsShape(r.credentials), ...(r.recoveryCodes === undefined ? {} : { recoveryCodes: r.recoveryCodes }) }
    case 'MFA_ENROLLMENT_REQUIRED': return { status: r.status, userName: r.userName, serialNumber: r.serialNumber, otpauthUri: r.otpauthUri, secretBase32: r.secretBase32 }
    case 'MFA_REQUIRED': return { status: r.status, userName: r.userName }
  }
}

const groupShape = (g: IamGroup, arn: string): Record<string, unknown> => ({ groupName: g.name, groupId: g.id, arn, createDate: g.createdMs })

/** Routes of `thingward iam …` and the console. */
export const iamRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  const { users, accessKeys, sts, authorizer } = deps.iam
  const p = (req: FastifyRequest, name: string): string => params(req)[name] ?? ''
  const roleShape = (r: IamRole): Record<string, unknown> => ({
    roleName: r.name, roleId: r.id, arn: users.roleArn(r.name), description: r.description, builtin: r.builtin, maxSessionDuration: r.maxSessionSec,
    assumeRolePolicyDocument: r.trustPolicy, createDate: r.createdMs, tags: r.tags,
  })
  const policyShape = (x: IamPolicy): Record<string, unknown> => ({
    policyName: x.name, policyId: x.id, arn: users.policyArn(x.name), description: x.description, builtin: x.builtin, version: x.version,
    createDate: x.createdMs, updateDate: x.updatedMs,
  })

  // ---- sign-in and identity -------------------------------------------------------------------------------
  app.post('/thingward/login', async (req) => {
    const b = jsonBody(req)
    return loginShape(await sts.login({ userName: b.userName, password: b.password, totpCode: b.totpCode, recoveryCode: b.recoveryCode, durationSeconds: b.durationSeconds }, { sourceIp: req.ip, requestId: req.id }))
  })

  app.get('/thingward/iam/whoami', async (req) => {
    const me = requirePrincipal(req)
    return {
      arn: me.arn, userId: me.userId, account: deps.accountId, type: me.type, name: me.name, accessKeyId: me.accessKeyId, temporary: me.temporary,
      mfa: me.mfa ?? null, ...(me.expiresMs === undefined ? {} : { expiration: new Date(me.expiresMs).toISOString() }),
    }
  })

  // ---- users ------------------------------------------------------------------------------------------------
  app.get('/thingward/iam/users', async (req) => {
    const page = await users.listUsers(qString(req, 'marker'), qInt(req, 'maxItems'))
    return { users: page.items, ...(page.marker === undefined ? {} : { marker: page.marker }) }
  })
  app.post('/thingward/iam/users/:userName', async (req) => {
    const b = jsonBody(req)
    const roles = b.roles === undefined ? [] : Array.isArray(b.roles) && b.roles.every(r => typeof r === 'string') ? b.roles as string[] : undefined
    if (roles === undefined) throw new AppError('ERR_IAM_INVALID_INPUT', 'roles must be a list of role names', { field: 'roles' })
    const u = await users.createUser(req.caller, { userName: p(req, 'userName'), tags: b.tags, roles })
    return users.summary(u)
  })
  app.get('/thingward/iam/users/:userName', async (req) => users.getUser(p(req, 'userName')))
  app.delete('/thingward/iam/users/:userName', async (req) => { await users.deleteUser(req.caller, p(req, 'userName')); return {} })
  app.put('/thingward/iam/users/:userName/login-profile', async (req) => { await users.setPassword(req.caller, p(req, 'userName'), jsonBody(req).password); return {} })
  app.delete('/thingward/iam/users/:userName/login-profile', async (req) => { await users.deletePassword(req.caller, p(req, 'userName')); return {} })
  app.post('/thingward/iam/users/:userName/password', async (req) => {
    const me = requirePrincipal(req)
    // IAM ChangePassword changes the caller's own password only.
    if (me.type !== 'User' || me.name !== p(req, 'userName')) throw new AppError('ERR_AUTH_ACCESS_DENIED', 'only a user can change their own password')
    const b = jsonBody(req)
    await users.changePassword(req.caller, me.name, b.oldPassword, b.newPassword)
    return {}
  })
  app.post('/thingward/iam/users/:userName/unlock', async (req) => {
    // Ends the user's sign-in lockout and the signature lockouts of the user's access keys.
    const keys = await accessKeys.list(p(req, 'userName'))
    await sts.unlock(req.caller, p(req, 'userName'))
    deps.iam.authenticator.unlock(keys.map(k => k.accessKeyId))
    return {}
  })
  app.post('/thingward/iam/users/:userName/revoke-sessions', async (req) => ({ revokedSessions: await users.revokeSessions(req.caller, p(req, 'userName')) }))

  // ---- access keys ------------------------------------------------------------------------------------------
  app.get('/thingward/iam/users/:userName/access-keys', async (req) => ({ accessKeys: await accessKeys.list(p(req, 'userName')) }))
  app.post('/thingward/iam/users/:userName/access-keys', async (req) => {
    const k = await accessKeys.create(req.caller, p(req, 'userName'))
    return { userName: p(req, 'userName'), accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, status: 'Active' }
  })
  app.get('/thingward/iam/users/:userName/access-keys/:accessKeyId', async (req) => accessKeys.describe(p(req, 'accessKeyId'), p(req, 'userName')))
  app.patch('/thingward/iam/users/:userName/access-keys/:accessKeyId', async (req) => {
    await accessKeys.setStatus(req.caller, p(req, 'accessKeyId'), jsonBody(req).status, p(req, 'userName'))
    return {}
  })
  app.delete('/thingward/iam/users/:userName/access-keys/:accessKeyId', async (req) => { await accessKeys.delete(req.caller, p(req, 'accessKeyId'), p(req, 'userName')); return {} })
  app.post('/thingward/iam/users/:userName/access-keys/:accessKeyId/rotate', async (req) => {
    const k = await accessKeys.rotate(req.caller, p(req, 'userName'), p(req, 'accessKeyId'))
    return { userName: p(req, 'userName'), accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, status: 'Active', deactivated: p(req, 'accessKeyId') }
  })

  // ---- MFA --------------------------------------------------------------------------------------------------
  app.get('/thingward/iam/users/:userName/mfa', async (req) => {
    const u = await users.getUser(p(req, 'userName'))
    return { mfaDevices: u.mfa === 'none' ? [] : [{ serialNumber: sts.mfaSerial(u.userName), status: u.mfa }] }
  })
  app.post('/thingward/iam/users/:userName/mfa', async (req) => sts.createVirtualMfa(req.caller, p(req, 'userName')))
  app.post('/thingward/iam/users/:userName/mfa/enable', async (req) => sts.enableMfa(req.caller, p(req, 'userName'), jsonBody(req).code))
  app.delete('/thingward/iam/users/:userName/mfa', async (req) => { await users.deactivateMfa(req.caller, p(req, 'userName')); return {} })

  // ---- roles assigned to users, policies attached ---------------------------------------------------------
  app.put('/thingward/iam/users/:userName/roles/:roleName', async (req) => { await users.assignRole(req.caller, p(req, 'userName'), p(req, 'roleName')); return {} })
  app.delete('/thingward/iam/users/:userName/roles/:roleName', async (req) => { await users.unassignRole(req.caller, p(req, 'userName'), p(req, 'roleName')); return {} })
  const attachRoutes = (type: AttachmentType, prefix: string, param: string): void => {
    app.put(`${prefix}/:${param}/policies/:policyName`, async (req) => { await users.attachPolicy(req.caller, type, p(req, param), p(req, 'policyName')); return {} })
    app.delete(`${prefix}/:${param}/policies/:policyName`, async (req) => { await users.detachPolicy(req.caller, type, p(req, param), p(req, 'policyName')); return {} })
  }
  attachRoutes('user', '/thingward/iam/users', 'userName')
  attachRoutes('group', '/thingward/iam/groups', 'groupName')
  attachRoutes('role', '/thingward/iam/roles', 'roleName')

  // ---- groups -----------------------------------------------------------------------------------------------
  app.get('/thingward/iam/groups', async (req) => {
    const page = await users.listGroups(qString(req, 'marker'), qInt(req, 'maxItems'))
    return { groups: page.items.map(g => groupShape(g, users.groupArn(g.name))), ...(page.marker === undefined ? {} : { marker: page.marker }) }
  })
  app.post('/thingward/iam/groups/:groupName', async (req) => {
    const g = await users.createGroup(req.caller, p(req, 'groupName'))
    return groupShape(g, users.groupArn(g.name))
  })
  app.get('/thingward/iam/groups/:groupName', async (req) => {
    const r = await users.getGroup(p(req, 'groupName'))
    return { ...groupShape(r.group, users.groupArn(r.group.name)), users: r.users, attachedPolicies: r.attachedPolicies }
  })
  app.delete('/thingward/iam/groups/:groupName', async (req) => { await users.deleteGroup(req.caller, p(req, 'groupName')); return {} })
  app.put('/thingward/iam/groups/:groupName/users/:userName', async (req) => { await users.addUserToGroup(req.caller, p(req, 'groupName'), p(req, 'userName')); return {} })
  app.delete('/thingward/iam/groups/:groupName/users/:userName', async (req) => { await users.removeUserFromGroup(req.caller, p(req, 'groupName'), p(req, 'userName')); return {} })

  // ---- roles ------------------------------------------------------------------------------------------------
  app.get('/thingward/iam/roles', async () => ({ roles: (await users.listRoles()).map(roleShape) }))
  app.post('/thingward/iam/roles/:roleName', async (req) => {
    const b = jsonBody(req)
    return roleShape(await users.createRole(req.caller, { roleName: p(req, 'roleName'), trustPolicy: b.assumeRolePolicyDocument, description: b.description, maxSessionDuration: b.maxSessionDuration, tags: b.tags }))
  })
  app.get('/thingward/iam/roles/:roleName', async (req) => {
    const r = await users.getRole(p(req, 'roleName'))
    return { ...roleShape(r.role), attachedPolicies: r.attachedPolicies, users: r.users }
  })
  app.delete('/thingward/iam/roles/:roleName', async (req) => { await users.deleteRole(req.caller, p(req, 'roleName')); return {} })
  app.put('/thingward/iam/roles/:roleName/trust-policy', async (req) => { await users.updateTrustPolicy(req.caller, p(req, 'roleName'), jsonBody(req).assumeRolePolicyDocument); return {} })

  // ---- policies ---------------------------------------------------------------------------------------------
  app.get('/thingward/iam/policies', async () => ({ policies: (await users.listPolicies()).map(policyShape) }))
  app.post('/thingward/iam/policies/:policyName', async (req) => {
    const b = jsonBody(req)
    return policyShape(await users.createPolicy(req.caller, p(req, 'policyName'), b.policyDocument, b.description))
  })
  app.get('/thingward/iam/policies/:policyName', async (req) => {
    const r = await users.getPolicy(p(req, 'policyName'))
    return { ...policyShape(r.policy), policyDocument: r.policy.document, attachments: r.attachments }
  })
  app.put('/thingward/iam/policies/:policyName', async (req) => policyShape(await users.updatePolicy(req.caller, p(req, 'policyName'), jsonBody(req).policyDocument)))
  app.delete('/thingward/iam/policies/:policyName', async (req) => { await users.deletePolicy(req.caller, p(req, 'policyName')); return {} })

  // ---- simulation (IAM SimulatePrincipalPolicy, our shape) ---------------------------------------------------
  app.post('/thingward/iam/simulate', async (req) => {
    const b = jsonBody(req)
    const type = typeof b.userName === 'string' ? 'user' : typeof b.roleName === 'string' ? 'role' : undefined
    const name = type === 'user' ? b.userName : b.roleName
    if (type === undefined || typeof name !== 'string') throw new AppError('ERR_IAM_INVALID_INPUT', 'userName or roleName is required', { field: 'userName' })
    const actions = Array.isArray(b.actions) && b.actions.every(a => typeof a === 'string') ? b.actions as string[] : undefined
    if (actions === undefined || actions.length === 0 || actions.length > 100) throw new AppError('ERR_IAM_INVALID_INPUT', 'actions must be a list of 1 to 100 action names', { field: 'actions' })
    const resource = typeof b.resource === 'string' ? b.resource : '*'
    const context: Record<string, ContextValue> = {}
    if (b.context !== undefined) {
      if (!isRecord(b.context)) throw new AppError('ERR_IAM_INVALID_INPUT', 'context must be an object of condition keys', { field: 'context' })
      for (const [k, v] of Object.entries(b.context)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') context[k] = v
        else throw new AppError('ERR_IAM_INVALID_INPUT', 'context values must be strings, numbers or booleans', { field: 'context' })
      }
    }
    const results = []
    for (const action of actions) {
      const d = await authorizer.authorizeWith(type, name, action, resource, context)
      results.push({ action, resource, decision: d.effect, allowed: d.allowed, explanation: describeDecision(d) })
    }
    return { results }
  })
}

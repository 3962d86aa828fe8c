/** ARNs in the AWS IoT shape (`arn:aws:iot:<region>:<account>:<type>/<name>`), so SDK users see what they expect. */
export interface ArnContext { readonly region: string, readonly accountId: string }

export const iotArn = (ctx: ArnContext, type: string, name: string): string =>
  `arn:aws:iot:${ctx.region}:${ctx.accountId}:${type}/${name}`

/** Parses an IoT ARN; returns undefined for anything that is not one. */
export function parseIotArn (arn: string): { region: string, accountId: string, type: string, name: string } | undefined {
  const m = /^arn:aws:iot:([^:]*):([^:]*):([a-z]+)\/(.+)$/.exec(arn)
  if (m === null) return undefined
  return { region: m[1], accountId: m[2], type: m[3], name: m[4] }
}

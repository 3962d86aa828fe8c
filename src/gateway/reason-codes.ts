/**
 * MQTT 5 reason codes (MQTT 5 §2.4, Table 2-6) and MQTT 3.1.1 CONNACK return codes (MQTT 3.1.1 §3.2.2.3,
 * Table 3.1) the gateway sends. Reason codes ≥ 0x80 indicate failure (MQTT 5 §2.4).
 */
export const ReasonCode = {
  Success: 0x00,
  GrantedQoS1: 0x01,
  DisconnectWithWill: 0x04,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  ServerShuttingDown: 0x8b,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const
export type ReasonCode = (typeof ReasonCode)[keyof typeof ReasonCode]

/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2-4 … 3.2.2-6]. */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const
export type ConnackReturnCode = (typeof ConnackReturnCode)[keyof typeof ConnackReturnCode]

/** MQTT 3.1.1 SUBACK failure return code [MQTT-3.9.3-2]. */
export const SUBACK_FAILURE_V4 = 0x80

/**
 * Maps an MQTT 5 CONNACK reason code to the closest MQTT 3.1.1 return code, for refusals that both versions
 * share (MQTT 3.1.1 has only six codes).
 */
export function connackCodeForV4 (reason: number): ConnackReturnCode {
  switch (reason) {
    case ReasonCode.Success: return ConnackReturnCode.Accepted
    case ReasonCode.UnsupportedProtocolVersion: return ConnackReturnCode.UnacceptableProtocolVersion
    case ReasonCode.ClientIdentifierNotValid: return ConnackReturnCode.IdentifierRejected
    case ReasonCode.BadUserNameOrPassword:
    case ReasonCode.BadAuthenticationMethod: return ConnackReturnCode.BadUserNameOrPassword
    case ReasonCode.NotAuthorized: return ConnackReturnCode.NotAuthorized
    default: return ConnackReturnCode.ServerUnavailable
  }
}

/** Short, fixed reason strings sent to v5 clients. They name the rule, never the policy that decided. */
export const ReasonString = {
  NotAuthorized: 'Not authorized',
  TopicInvalid: 'Topic invalid',
  TopicTooLong: 'Topic too long or too deep',
  FilterInvalid: 'Topic filter invalid',
  TooManySubscriptions: 'Subscription limit reached',
  RateExceeded: 'Publish rate limit exceeded',
  RetainedQuota: 'Retained message limit reached',
  PayloadTooLarge: 'Payload too large',
  SlowConsumer: 'Message queue full',
  Revoked: 'Connection closed by administrator',
} as const

/**
 * TLS 1.2 suites we accept: ECDHE key exchange (forward secrecy) with AEAD ciphers only (RFC 7525 §4.2,
 * BSI TR-02102-2). TLS 1.3 suites are all AEAD and stay at Node's defaults.
 */
export const STRONG_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

export const TLS13_CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'].join(':')

/** The `ciphers` option for node:tls: TLS 1.3 suites first, then the strong TLS 1.2 list. */
export const TLS_CIPHERS = `${TLS13_CIPHERS}:${STRONG_TLS12_CIPHERS}`

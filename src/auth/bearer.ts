import { AuthError } from './authError.js';

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750): undefined when the header is
 * absent; AuthError `malformed` when present with another scheme or no token.
 */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === '') return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(value);
  if (!match) throw new AuthError('malformed', 'Authorization must be "Bearer <token>"');
  return match[1];
}

/** True for addresses that only this machine can reach: the node may run without auth there. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

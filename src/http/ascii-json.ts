/**
 * JSON made safe for a header value: every character outside printable ASCII escaped as `\uXXXX` (header values
 * are ASCII; node:http refuses others, and gateways disagree on what they do with them). Still valid JSON.
 */
export const asciiJson = (json: string): string => json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

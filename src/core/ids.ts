/** Info hashes travel as 40 lowercase hex characters inside the project, 20 raw bytes on the wire. */
export type InfoHashHex = string;

const HEX40 = /^[0-9a-fA-F]{40}$/;

export function isInfoHashHex(s: string): boolean {
  return HEX40.test(s);
}

/** 20 raw bytes (as a latin1 string) to 40 lowercase hex characters. */
export function latin1ToHex(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}

const PRINTABLE = /^[\x21-\x7e]+$/;

/**
 * How a peer id is shown in JSON and logs: as itself when it is printable ASCII without spaces
 * (`peer2`, `-aria2-...`), else as `hex:` followed by its bytes in hex.
 */
export function displayPeerId(peerId: string): string {
  return PRINTABLE.test(peerId) && !peerId.startsWith('hex:') ? peerId : `hex:${latin1ToHex(peerId)}`;
}

/** The inverse of displayPeerId. */
export function parseDisplayedPeerId(shown: string): string {
  if (shown.startsWith('hex:') && /^[0-9a-fA-F]*$/.test(shown.slice(4)) && shown.length % 2 === 0) {
    return Buffer.from(shown.slice(4), 'hex').toString('latin1');
  }
  return shown;
}

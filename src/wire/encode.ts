import { HANDSHAKE_LENGTH, type Handshake, type Message, MessageId, PSTR } from './messages.js';

/** <pstrlen=19><pstr="BitTorrent protocol"><reserved: 8><info_hash: 20><peer_id: 20> */
export function encodeHandshake(h: Omit<Handshake, 'type'>): Buffer {
  const b = Buffer.alloc(HANDSHAKE_LENGTH);
  b[0] = PSTR.length;
  b.write(PSTR, 1, 'latin1');
  b.set(h.reserved.subarray(0, 8), 20);
  b.set(h.infoHash.subarray(0, 20), 28);
  b.set(h.peerId.subarray(0, 20), 48);
  return b;
}

function header(length: number, id: number, extra: number): Buffer {
  const b = Buffer.allocUnsafe(4 + length);
  b.writeUInt32BE(length, 0);
  b[4] = id;
  if (extra > 0) b.fill(0, 5, 5 + extra);
  return b;
}

/**
 * One message as bytes. A piece message's block is not copied when `pieceParts` is used instead
 * (the transport writes the header and the block as two buffers).
 */
export function encode(m: Message): Buffer {
  switch (m.type) {
    case 'keepAlive': // <len=0000>
      return Buffer.alloc(4);
    case 'choke': // <len=0001><id=0>
      return header(1, MessageId.choke, 0);
    case 'unchoke': // <len=0001><id=1>
      return header(1, MessageId.unchoke, 0);
    case 'interested': // <len=0001><id=2>
      return header(1, MessageId.interested, 0);
    case 'notInterested': // <len=0001><id=3>
      return header(1, MessageId.notInterested, 0);
    case 'have':
    case 'suggest':
    case 'allowedFast': {
      // <len=0005><id=4|13|17><piece index>
      const b = header(5, MessageId[m.type], 0);
      b.writeUInt32BE(m.index, 5);
      return b;
    }
    case 'haveAll': // <len=0001><id=14>
      return header(1, MessageId.haveAll, 0);
    case 'haveNone': // <len=0001><id=15>
      return header(1, MessageId.haveNone, 0);
    case 'bitfield': {
      // <len=0001+X><id=5><bitfield>
      const b = header(1 + m.bitfield.length, MessageId.bitfield, 0);
      b.set(m.bitfield, 5);
      return b;
    }
    case 'request':
    case 'cancel':
    case 'reject': {
      // <len=0013><id=6|8|16><index><begin><length>
      const b = header(13, MessageId[m.type], 0);
      b.writeUInt32BE(m.index, 5);
      b.writeUInt32BE(m.begin, 9);
      b.writeUInt32BE(m.length, 13);
      return b;
    }
    case 'piece': {
      // <len=0009+X><id=7><index><begin><block>
      const b = pieceHeader(m.index, m.begin, m.block.length);
      return Buffer.concat([b, m.block]);
    }
    case 'port': {
      // <len=0003><id=9><listen-port>
      const b = header(3, MessageId.port, 0);
      b.writeUInt16BE(m.port, 5);
      return b;
    }
    case 'extended': {
      // <len=0002+X><id=20><extended message id><payload>
      const b = Buffer.allocUnsafe(6 + m.payload.length);
      b.writeUInt32BE(2 + m.payload.length, 0);
      b[4] = MessageId.extended;
      b[5] = m.ext;
      b.set(m.payload, 6);
      return b;
    }
    case 'unknown': {
      // <len=0001+X><id><X zero bytes>: only for tests of the decoder
      return header(1 + m.length, m.id, m.length);
    }
  }
}

/** The 13 bytes before a piece message's block: <len=0009+X><id=7><index><begin>. */
export function pieceHeader(index: number, begin: number, blockLength: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b.writeUInt32BE(9 + blockLength, 0);
  b[4] = MessageId.piece;
  b.writeUInt32BE(index, 5);
  b.writeUInt32BE(begin, 9);
  return b;
}

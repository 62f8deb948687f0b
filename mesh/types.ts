// Types shared by the parts of a mesh router.
import type { DataType, NodeId } from './packet.ts';

export interface MeshTimers {
  helloMinMs: number;
  helloMaxMs: number;
  updateMinMs: number;
  updateMaxMs: number;
  /** least wait for a hop's acknowledgement; radio links add the airtime */
  ackTimeoutMs: number;
  /** hellos missed in a row that take a neighbour down */
  helloMissesDown: number;
}

export interface MeshLogger {
  debug(message: string): void;
  warn(message: string): void;
}

export interface MeshMessage {
  type: DataType;
  origin: NodeId;
  originHex: string;
  payload: Uint8Array;
  /** it came compressed: the sender holds a reference we confirmed */
  compressed: boolean;
}

export interface MeshCounters {
  controlFrames: number;
  controlBytes: number;
  dataFrames: number;
  dataBytes: number;
  ackFrames: number;
  ackBytes: number;
  forwarded: number;
  delivered: number;
  /** data frames that waited for duty-cycle budget (they wait, they are not dropped) */
  heldForBudget: number;
  dropped: { noRoute: number; hopLimit: number; unacknowledged: number };
  /** drop notices this box sent as a relay, and messages it sent again on one as their origin */
  dropNotices: number;
  resentOnNotice: number;
  rejected: { mac: number; replay: number; malformed: number };
}

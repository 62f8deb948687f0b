// How the data plane shares a radio's duty-cycle budget with control traffic: data
// frames go only while they leave a reserve of the allowance untouched, so hellos,
// updates, seqno requests and acks always find airtime, and a box whose budget is
// spent keeps its readings waiting rather than dropping them. Control is not gated here:
// the link itself never exceeds the regional rule (drivers/radio/duty-cycle.ts).
import type { Link } from '../drivers/link.ts';

/** the share of a link's allowance that data leaves for control traffic */
export const CONTROL_RESERVE_SHARE = 0.2;
/** how often a frame that waits for budget looks again */
export const BUDGET_POLL_MS = 10_000;
/** a data frame's bytes beyond its payload (header, MAC), for the airtime estimate */
const DATA_OVERHEAD_BYTES = 48;

export class DataBudget {
  private readonly links: Link[];
  /** the largest budget each link has shown: its allowance (a fresh ledger's budget is all of it) */
  private readonly allowance: number[];

  constructor(links: Link[]) {
    this.links = links;
    this.allowance = links.map(() => 0);
  }

  /** Whether a data frame carrying `payloadBytes` may go on `linkIndex` now. */
  allows(linkIndex: number, payloadBytes: number): boolean {
    const link = this.links[linkIndex]!;
    const budget = link.budgetMs();
    if (budget === Infinity) return true;
    const allowance = this.allowance[linkIndex] = Math.max(this.allowance[linkIndex]!, budget);
    return budget - link.airtimeMs(payloadBytes + DATA_OVERHEAD_BYTES) >= CONTROL_RESERVE_SHARE * allowance;
  }
}

/**
 * The room's code at any revision, for the history slider.
 *
 * Texts are kept as they are seen: each revision the client reaches while all its edits are
 * acknowledged (then its text is the server's at that revision), and each one loaded. A revision
 * not kept is rebuilt from the nearest kept one before it by replaying the operations between
 * (`GET /rooms/{id}/history`, page by page), when that is a short way for a text of its size;
 * otherwise, or when the
 * replay fails, the server rebuilds it (`GET /rooms/{id}?revision=R`). What is kept is bounded by
 * the total length of its texts, the least recently used going first, so that a large room does
 * not fill the tab's memory.
 */

import { TextOperation } from "@duet/client";
import type { HistoryPage, RoomView } from "./api";

export interface RevisionSource {
  room(revision: number): Promise<RoomView>;
  history(from: number, to: number): Promise<HistoryPage>;
}

/** A revision's code, and who committed it and when, when that is known. */
export interface Revision {
  revision: number;
  code: string;
  clientId?: string;
  committedAt?: string;
}

/** How many operations are worth replaying rather than asking for the text itself. */
export const REPLAY_LIMIT = 500;
/**
 * The most text a replay may copy, in UTF-16 code units: each operation applied copies the
 * whole text, so a large room's text is asked for rather than replayed (a 4 MB room replays at
 * most five operations, a 40 kB one the full `REPLAY_LIMIT`).
 */
export const REPLAY_COPY_LIMIT = 20_000_000;
/** The most UTF-16 code units of text kept (32 MB or so). */
export const DEFAULT_BUDGET = 16_000_000;

export class RevisionTexts {
  private readonly kept = new Map<number, Revision>();
  private size = 0;

  constructor(
    private readonly source: RevisionSource,
    private readonly budget = DEFAULT_BUDGET,
  ) {}

  /** A revision's code as the client saw it. */
  remember(revision: Revision): void {
    const previous = this.kept.get(revision.revision);
    if (previous !== undefined) {
      this.size -= previous.code.length;
      this.kept.delete(revision.revision);
    }
    if (revision.code.length > this.budget) {
      return;
    }
    const merged = { ...previous, ...revision };
    this.kept.set(revision.revision, merged);
    this.size += merged.code.length;
    for (const [key, old] of this.kept) {
      if (this.size <= this.budget) {
        break;
      }
      this.kept.delete(key);
      this.size -= old.code.length;
    }
  }

  /** The revision if it is kept (and then the most recently used). */
  get(revision: number): Revision | undefined {
    const found = this.kept.get(revision);
    if (found !== undefined) {
      this.kept.delete(revision);
      this.kept.set(revision, found);
    }
    return found;
  }

  /** Forgets everything (another room). */
  clear(): void {
    this.kept.clear();
    this.size = 0;
  }

  /**
   * The code at `revision`: kept, replayed from a kept one before it, or the server's.
   * Rejects with the server's error (`HttpError` 404 `revision_not_found`, 410 `revision_gone`).
   */
  async load(revision: number): Promise<Revision> {
    const found = this.get(revision);
    if (found !== undefined) {
      return found;
    }
    const start = this.nearestBefore(revision);
    if (
      start !== undefined &&
      revision - start.revision <= REPLAY_LIMIT &&
      (revision - start.revision) * Math.max(start.code.length, 1) <= REPLAY_COPY_LIMIT
    ) {
      try {
        return await this.replay(start, revision);
      } catch {
        // An older server without the history route, or a log that does not fit: ask for the text.
      }
    }
    const view = await this.source.room(revision);
    const loaded: Revision = { revision, code: view.code, ...(view.updatedAt ? { committedAt: view.updatedAt } : {}) };
    this.remember(loaded);
    return loaded;
  }

  private nearestBefore(revision: number): Revision | undefined {
    let best: Revision | undefined;
    for (const kept of this.kept.values()) {
      if (kept.revision < revision && (best === undefined || kept.revision > best.revision)) {
        best = kept;
      }
    }
    return best;
  }

  private async replay(start: Revision, revision: number): Promise<Revision> {
    let code = start.code;
    let at = start.revision;
    let last: Revision = start;
    let from: number | null = start.revision;
    while (from !== null && at < revision) {
      const page: HistoryPage = await this.source.history(from, revision);
      for (const committed of page.operations) {
        if (committed.revision !== at + 1) {
          throw new Error(`the history skips from revision ${at} to ${committed.revision}`);
        }
        code = TextOperation.fromJSON(committed.ops).apply(code);
        at = committed.revision;
        last = { revision: at, code, clientId: committed.clientId, committedAt: committed.committedAt };
        this.remember(last);
      }
      if (page.nextFrom !== null && page.nextFrom <= from) {
        throw new Error("the history does not move on");
      }
      from = page.nextFrom;
    }
    if (at !== revision) {
      throw new Error(`the history ends at revision ${at}`);
    }
    return last;
  }
}

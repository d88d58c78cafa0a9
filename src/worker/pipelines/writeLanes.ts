// When a pipeline batch's results may be written: batches of one pipeline
// hold disjoint rows, so up to `perPipeline` of its writes run at once (the
// write is the database-bound part of a backfill, and two of them use two
// cores); a write of another pipeline waits until none is in flight, since
// two pipelines over one table would lock each other's source rows ('busy':
// computed again). First come, first served.
export class WriteLanes {
  private readonly inFlight: number[] = [];
  private readonly waiting: { pipelineId: number; start: () => void }[] = [];

  constructor(private readonly perPipeline = 2) {}

  /** Runs `write` for `pipelineId` when its turn comes. */
  async run<T>(pipelineId: number, write: () => Promise<T>): Promise<T> {
    if (this.waiting.length === 0 && this.fits(pipelineId)) this.inFlight.push(pipelineId);
    else await new Promise<void>((start) => this.waiting.push({ pipelineId, start }));
    try {
      return await write();
    } finally {
      this.inFlight.splice(this.inFlight.indexOf(pipelineId), 1);
      while (this.waiting.length > 0 && this.fits(this.waiting[0].pipelineId)) {
        const next = this.waiting.shift()!;
        this.inFlight.push(next.pipelineId);
        next.start();
      }
    }
  }

  /** Writes started and not finished, and writes waiting for their turn. */
  get backlog(): number {
    return this.inFlight.length + this.waiting.length;
  }

  private fits(pipelineId: number): boolean {
    return this.inFlight.length < this.perPipeline && this.inFlight.every((p) => p === pipelineId);
  }
}

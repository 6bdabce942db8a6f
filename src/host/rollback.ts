/**
 * A journal of undo steps: an action records how to reverse each change as it makes it, and
 * on failure runs them newest first, so the node ends as the action found it. Undo errors are
 * reported but never hide the original failure.
 */
export class Rollback {
  private steps: { what: string; undo: () => Promise<unknown> }[] = [];

  /** Record how to reverse a change that has just been made. */
  add(what: string, undo: () => Promise<unknown>): void {
    this.steps.push({ what, undo });
  }

  /** Forget the journal (the action completed). */
  commit(): void {
    this.steps = [];
  }

  /** Undo everything recorded, newest first. Returns the messages of undo steps that failed. */
  async run(): Promise<string[]> {
    const problems: string[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step.undo();
      } catch (e) {
        problems.push(`could not undo ${step.what}: ${(e as Error).message}`);
      }
    }
    this.steps = [];
    return problems;
  }
}

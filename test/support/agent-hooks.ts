/**
 * The setup and teardown every agent test repeated: start an agent in a
 * mocha hook or a test, and afterwards stop it and remove the data dir made
 * for it, whatever the test did in between.
 */
import { removeDir, startAgent, type AgentOptions, type RunningAgent, type TestAgent } from './agent.js';
import { startInProcessAgent, type InProcessAgentOptions } from './in-process-agent.js';

/**
 * One in-process agent for a describe block: started before its first
 * test, stopped (gracefully) after its last, its data dir removed. The
 * object returned stands for that agent in the tests' bodies.
 */
export function suiteAgent(options: () => InProcessAgentOptions | Promise<InProcessAgentOptions>): TestAgent {
  return new SuiteAgent(suiteHooks(async () => startInProcessAgent(await options())));
}

/** suiteAgent() for a child process: where the agent's process is the point of the block (isolation). */
export function suiteChildAgent(options: () => AgentOptions | Promise<AgentOptions>): RunningAgent {
  return new SuiteChildAgent(suiteHooks(async () => startAgent(await options())));
}

/** Stands for the agent a suite's hooks started, whichever one runs now. */
class SuiteAgent<A extends TestAgent> implements TestAgent {
  constructor(protected readonly current: () => A) {}
  get url(): string {
    return this.current().url;
  }
  get dataDir(): string {
    return this.current().dataDir;
  }
  get logs(): string[] {
    return this.current().logs;
  }
  stop(timeoutMs?: number): Promise<number | null> {
    return this.current().stop(timeoutMs);
  }
  request(...args: Parameters<TestAgent['request']>): ReturnType<TestAgent['request']> {
    return this.current().request(...args);
  }
}

class SuiteChildAgent extends SuiteAgent<RunningAgent> implements RunningAgent {
  get pid(): number {
    return this.current().pid;
  }
  get process(): RunningAgent['process'] {
    return this.current().process;
  }
  kill9(): Promise<void> {
    return this.current().kill9();
  }
}

/** before(): start; after(): stop and remove the data dir. Returns the running agent's accessor. */
function suiteHooks<A extends TestAgent>(start: () => Promise<A>): () => A {
  let agent: A | undefined;
  before(async () => {
    agent = await start();
  });
  after(async () => {
    if (!agent) return;
    await agent.stop();
    await removeDir(agent.dataDir);
    agent = undefined;
  });
  return () => {
    if (!agent) throw new Error('the suite agent runs only between its before() and after() hooks');
    return agent;
  };
}

export interface PerTestAgents {
  /** An agent in this process (routes, jobs, state). */
  inProcess(options: InProcessAgentOptions): Promise<TestAgent>;
  /** An agent in a child process, where the process is the point (kill -9, SIGTERM, two processes). */
  spawn(options: AgentOptions): Promise<RunningAgent>;
}

/**
 * Agents a test starts: after each test the children are killed (kill -9:
 * nothing to wait for) and in-process agents stopped, then the data dirs
 * the helpers made for them are removed. A data dir passed in belongs to
 * the test, but an agent restarted on one made here is still cleaned up.
 */
export function agentsPerTest(): PerTestAgents {
  const running: Array<TestAgent | RunningAgent> = [];
  const madeDirs = new Set<string>();
  afterEach(async () => {
    // Every agent is ended and every dir removed even if one stop fails; the first failure is reported.
    const ended = await Promise.allSettled(running.splice(0).map((agent) => ('kill9' in agent ? agent.kill9() : agent.stop())));
    for (const dir of madeDirs) await removeDir(dir);
    madeDirs.clear();
    const failed = ended.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  });
  const track = <A extends TestAgent>(agent: A, ownDir: boolean): A => {
    running.push(agent);
    if (ownDir) madeDirs.add(agent.dataDir);
    return agent;
  };
  return {
    inProcess: async (options) => track(await startInProcessAgent(options), options.dataDir === undefined),
    spawn: async (options) => track(await startAgent(options), options.dataDir === undefined),
  };
}

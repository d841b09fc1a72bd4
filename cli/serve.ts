/**
 * `hyperkern serve [agent flags]`: the agent (core/main.ts, what `npm start`
 * runs) with the host's config as default: /etc/hyperkern/agent.json
 * (deploy/agent.json keeps state in /var/lib/hyperkern). --config and
 * HYPERKERN_CONFIG still win.
 */
export const HOST_CONFIG = '/etc/hyperkern/agent.json';

export async function serve(agentFlags: string[]): Promise<void> {
  const hasConfigFlag = agentFlags.some((f) => f === '--config' || f.startsWith('--config='));
  if (!hasConfigFlag && !process.env.HYPERKERN_CONFIG) process.env.HYPERKERN_CONFIG = HOST_CONFIG;
  // core/main.ts parses process.argv and owns the process from here on
  // (signals, graceful stop, exit code).
  process.argv = [process.argv[0], 'hyperkern serve', ...agentFlags];
  await import('../core/main.js');
}

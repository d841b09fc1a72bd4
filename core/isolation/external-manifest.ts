/**
 * The manifest of an external sub-agent (a config entry with `command`):
 * the kernel runs the program once at boot, asks `hello`, and stops it; the
 * isolated plugin then runs it for real. The manifest has no class to
 * construct, because such a plugin only ever runs out of process.
 */
import { Errors, messageOf } from '../errors.js';
import { Tokens, type GuestDirectory, type PluginManifest } from '../contract/plugin-api.js';
import type { PluginConfig } from '../config/config.js';
import { describePluginEntry, type KernelServices } from '../plugins/plugin-loader.js';
import { childProgram } from './isolated-plugin.js';
import { PluginChild } from './plugin-child.js';

/** Stands in for the class such a manifest lacks; construct() never builds it. */
class ExternalSubAgent {}

export async function readExternalManifest(entry: PluginConfig, where: string, services: KernelServices): Promise<PluginManifest> {
  let child: PluginChild;
  try {
    child = await PluginChild.spawn({
      label: `sub-agent "${describePluginEntry(entry)}"`,
      ...childProgram({ config: entry }, services.configFile),
      log: services.log,
      guests: services.container.resolve<GuestDirectory>(Tokens.Guests),
      handshakeTimeoutMs: 20_000,
    });
  } catch (error) {
    throw Errors.pluginLoad(`${where}: ${messageOf(error)}`, { cause: error });
  }
  await child.stop(2000);
  const hello = child.manifest;
  return {
    id: hello.id,
    version: hello.version,
    pluginApi: hello.pluginApi,
    description: hello.description,
    stages: hello.stages,
    create: ExternalSubAgent,
    construct: () => {
      throw new Error('an external sub-agent (config "command") only runs isolated');
    },
  };
}

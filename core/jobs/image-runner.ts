/**
 * Runs image actions. Fetch and delete are jobs on the job log like any
 * guest action (GuestID "": they belong to the host), queued per image id so
 * two jobs on one image never interleave; a second fetch or delete of an
 * image while one is queued or running is refused with 409 at once. List,
 * get and upload are answered inside the request. Routes never name a
 * plugin: they name an action, the config maps it to stages.
 */
import type { Readable } from 'node:stream';
import { imageActionFor, type ImageAction, type ImageJobAction, type ImageQueryAction } from './actions.js';
import type { ActionPlans, ImagePlan } from './action-plan.js';
import { Errors, messageOf } from '../errors.js';
import { JobLog } from './job-log.js';
import { JobScheduler } from './job-scheduler.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import { runStage, stageShutdownController } from '../plugins/stage-runner.js';
import type { TransferProgress } from '../contract/plugin-api.js';
import type { Image, ImageRequest, ImageResponse, Job } from '../contract/wire-types.js';

/** The job's GuestID: image jobs belong to the host, not to a guest. */
export const HOST_JOB = '';

export interface AcceptedImageJob {
  job: Job;
  /** The image as the sync stages left it (pending for a fetch). */
  image: Image;
}

export class ImageRunner {
  private readonly scheduler: JobScheduler;
  /** Image id -> its queued or running job. */
  private readonly active = new Map<string, string>();
  private readonly cancels = new Map<string, AbortController>();
  private readonly shutdownController = stageShutdownController();
  private stopping = false;
  /** False until recover() ran: a fetch must not slip in ahead of a requeued one of the same id. */
  private recovered = false;

  constructor(
    private readonly jobs: JobLog,
    private readonly plans: ActionPlans,
    private readonly log: AgentLogger,
    concurrency: number,
  ) {
    this.scheduler = new JobScheduler(concurrency, (key, jobId) => this.execute(key, jobId));
  }

  /** After a restart: queued image jobs run again, in order (running ones were marked interrupted). */
  recover(): number {
    let resumed = 0;
    for (const { job, args } of this.jobs.withStatus('Queued')) {
      if (job.GuestID !== HOST_JOB) continue;
      const request = args.request as ImageRequest | undefined;
      if (!request) continue;
      this.active.set(request.id, job.ID);
      this.scheduler.enqueue(`image:${request.id}`, job.ID);
      resumed++;
    }
    this.recovered = true;
    return resumed;
  }

  isConfigured(action: ImageAction): boolean {
    return this.plans.image.has(action);
  }

  /** fetchImage (or its container variant): sync checks now, the transfer as a job. */
  fetch(request: ImageRequest, args: Record<string, unknown>): Promise<AcceptedImageJob> {
    return this.submit(imageActionFor('fetchImage', request.type) as ImageJobAction, request, args);
  }

  remove(request: ImageRequest, args: Record<string, unknown>): Promise<AcceptedImageJob> {
    return this.submit(imageActionFor('deleteImage', request.type) as ImageJobAction, request, args);
  }

  async list(request: ImageRequest, args: Record<string, unknown>): Promise<Image[]> {
    return (await this.query(imageActionFor('listImages', request.type) as ImageQueryAction, request, args)).images;
  }

  /** The image, or a 404 naming it. */
  async get(request: ImageRequest, args: Record<string, unknown>): Promise<Image> {
    const { images } = await this.query(imageActionFor('getImage', request.type) as ImageQueryAction, request, args);
    const image = images.find((i) => i.id === request.id) ?? images[0];
    if (!image) throw Errors.imageNotFound(request.id);
    return image;
  }

  /** Streams an upload into the backend; answers when the image is stored and checked. */
  async upload(request: ImageRequest, body: Readable, size: number | undefined, args: Record<string, unknown>): Promise<Image> {
    const plan = this.plan('uploadImage');
    if (this.active.has(request.id)) throw this.busy(request.id);
    const response = await runStage<ImageResponse>(
      plan.sync[0],
      { ...request, body, size },
      { log: asPluginLogger(this.log), shutdown: this.shutdownController.signal },
      args,
    );
    const image = checkedImages(response, plan.sync[0].handle.name)[0];
    if (!image) throw Errors.stageFailed(`stage ${plan.sync[0].handle.name} stored no image`);
    return image;
  }

  /** Stops a queued or running image job; true when it was one of ours. */
  cancel(jobId: string, reason = 'job cancelled'): boolean {
    const controller = this.cancels.get(jobId);
    if (!controller) return false;
    controller.abort(new Error(reason));
    return true;
  }

  /** As ActionRunner.shutdown: no new jobs, `graceMs` for running ones, then abort them. */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    if (!(await this.scheduler.drain(graceMs))) this.shutdownController.abort(new Error('agent is shutting down'));
  }

  get stats(): { queued: number; running: number } {
    return { queued: this.scheduler.queuedCount, running: this.scheduler.runningCount };
  }

  private async query(action: ImageQueryAction, request: ImageRequest, args: Record<string, unknown>): Promise<ImageResponse> {
    const plan = this.plan(action, false);
    const response = await runStage<ImageResponse>(plan.sync[0], request, { log: asPluginLogger(this.log) }, args);
    return { images: checkedImages(response, plan.sync[0].handle.name) };
  }

  private async submit(action: ImageJobAction, request: ImageRequest, args: Record<string, unknown>): Promise<AcceptedImageJob> {
    const plan = this.plan(action);
    if (this.active.has(request.id)) throw this.busy(request.id);
    // Claimed before the first await: a concurrent request sees it.
    this.active.set(request.id, '');
    try {
      let image: Image = { id: request.id, type: request.type, volume: '', snapshot: '', size: 0, status: 'pending' };
      for (const stage of plan.sync) {
        const response = await runStage<ImageResponse | undefined>(stage, request, { log: asPluginLogger(this.log) }, args);
        image = checkedImages(response ?? { images: [] }, stage.handle.name)[0] ?? image;
      }
      const job = await this.jobs.create(HOST_JOB, action, { ...args, request });
      this.active.set(request.id, job.ID);
      this.scheduler.enqueue(`image:${request.id}`, job.ID);
      return { job, image };
    } catch (error) {
      this.active.delete(request.id);
      throw error;
    }
  }

  /** `changes`: the action writes images (fetch, delete, upload), so it waits for recovery. */
  private plan(action: ImageAction, changes = true): ImagePlan {
    if (this.stopping) throw Errors.shuttingDown('the agent is shutting down and accepts no new actions; retry when it is back');
    if (changes && !this.recovered) throw Errors.notReady('the agent is starting and is requeueing the jobs of its last run; retry in a moment');
    const plan = this.plans.image.get(action);
    if (!plan) throw Errors.actionNotConfigured(`this agent's config maps no stages to "${action}"; add actions.${action} to the config (docs/images.md)`);
    return plan;
  }

  private busy(id: string): Error {
    const jobId = this.active.get(id);
    return Errors.conflict(`image ${id} has a fetch or delete in progress${jobId ? ` (job ${jobId})` : ''}; wait for it to end`);
  }

  private async execute(_key: string, jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    const stored = this.jobs.argsOf(jobId);
    const request = stored.request as ImageRequest;
    if (!job || job.Status !== 'Queued') {
      if (request && this.active.get(request.id) === jobId) this.active.delete(request.id);
      return;
    }
    const { request: _request, ...args } = stored;
    const log = asPluginLogger(this.log.child({ job: jobId, image: request.id, action: job.Action }));
    const plan = this.plans.image.get(job.Action as ImageAction);
    const cancel = new AbortController();
    this.cancels.set(jobId, cancel);
    await this.jobs.update(jobId, { Status: 'Running', StartedAt: new Date().toISOString() });
    // Progress goes to the job's Message; writes are coalesced by the store.
    const progress = (p: TransferProgress) => {
      void this.jobs.update(jobId, { Message: describeProgress(p) }).catch(() => undefined);
    };
    try {
      if (!plan) throw new Error(`action "${job.Action}" is no longer configured`);
      let images: Image[] = [];
      for (const stage of plan.async) {
        if (cancel.signal.aborted) throw cancel.signal.reason;
        const response = await runStage<ImageResponse | undefined>(
          stage,
          request,
          { log, jobId, shutdown: this.shutdownController.signal, cancel: cancel.signal, progress },
          args,
        );
        if (response) images = checkedImages(response, stage.handle.name);
      }
      const image = images[0];
      const message = image && job.Action.endsWith('etchImage') ? `image ${image.id} is ready (${image.size} MiB)` : '';
      await this.jobs.update(jobId, { Status: 'Complete', Message: message });
      log.info({ status: 'Complete' }, 'job finished');
    } catch (error) {
      const reason = messageOf(error);
      log.warn({ status: 'Error', error: reason }, 'job failed');
      await this.jobs.update(jobId, { Status: 'Error', Message: reason }).catch((e: unknown) => log.error({ error: messageOf(e) }, 'could not record the job failure'));
    } finally {
      this.cancels.delete(jobId);
      if (this.active.get(request.id) === jobId) this.active.delete(request.id);
    }
  }
}

function describeProgress({ done, total }: TransferProgress): string {
  if (total === undefined || total === 0) return `transferring: ${done} bytes so far`;
  return `transferring: ${done} of ${total} bytes (${Math.floor((done / total) * 100)}%)`;
}

/** A stage's ImageResponse, checked: a malformed answer is the backend's fault. */
function checkedImages(response: ImageResponse | undefined, stage: string): Image[] {
  const images = response?.images;
  if (images === null || images === undefined) return [];
  if (!Array.isArray(images) || images.some((i) => typeof i !== 'object' || i === null || typeof i.id !== 'string')) {
    throw Errors.stageFailed(`stage ${stage} answered ${JSON.stringify(response).slice(0, 200)} where an ImageResponse ({images: [{id, type, size, ...}]}) belongs`);
  }
  return images.map((i) => ({ id: i.id, type: i.type ?? '', volume: i.volume ?? '', snapshot: i.snapshot ?? '', size: i.size ?? 0, status: i.status ?? '' }));
}

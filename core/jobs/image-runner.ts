/**
 * Runs image actions. Fetch and delete are jobs of the job engine like any
 * guest action (GuestID "": they belong to the host), queued per image id
 * (queue key `image:<id>`) so two jobs on one image never interleave; a
 * second fetch or delete of an image while one is queued or running is
 * refused with 409 at once. List, get and upload are answered inside the
 * request. Routes never name a plugin: they name an action, the config maps
 * it to stages.
 */
import type { Readable } from 'node:stream';
import { imageActionFor, isImageJobAction, type ImageAction, type ImageJobAction, type ImageQueryAction } from './actions.js';
import type { ActionPlans, ImagePlan } from './action-plan.js';
import { Errors } from '../errors.js';
import { isFinished, type JobLog } from './job-log.js';
import type { JobEngine, JobResult, JobRun } from './job-engine.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
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
  /** Image id -> its queued or running job ('' while the request that claimed it runs its checks). */
  private readonly active = new Map<string, string>();

  constructor(
    private readonly jobs: JobLog,
    private readonly plans: ActionPlans,
    private readonly engine: JobEngine,
    private readonly log: AgentLogger,
  ) {
    engine.register({
      kind: 'image',
      handles: isImageJobAction,
      queueOf: (_job, args) => `image:${requestOf(args)?.id ?? ''}`,
      logFields: (_job, args) => ({ image: requestOf(args)?.id }),
      run: (run) => this.execute(run),
      // A queued job found at start: its image is claimed again, so a fetch cannot slip in ahead of it.
      requeued: (job, args) => {
        const request = requestOf(args);
        if (request) this.active.set(request.id, job.ID);
      },
    });
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
    if (this.isBusy(request.id)) throw this.busy(request.id);
    const response = await this.engine.timedStage<ImageResponse>(
      plan.sync[0],
      { ...request, body, size },
      { log: asPluginLogger(this.log), shutdown: this.engine.shutdownSignal },
      args,
    );
    const image = checkedImages(response, plan.sync[0].handle.name)[0];
    if (!image) throw Errors.stageFailed(`stage ${plan.sync[0].handle.name} stored no image`);
    return image;
  }

  private async query(action: ImageQueryAction, request: ImageRequest, args: Record<string, unknown>): Promise<ImageResponse> {
    const plan = this.plan(action, false);
    const response = await this.engine.timedStage<ImageResponse>(plan.sync[0], request, { log: asPluginLogger(this.log) }, args);
    return { images: checkedImages(response, plan.sync[0].handle.name) };
  }

  private async submit(action: ImageJobAction, request: ImageRequest, args: Record<string, unknown>): Promise<AcceptedImageJob> {
    const plan = this.plan(action);
    if (this.isBusy(request.id)) throw this.busy(request.id);
    // Claimed before the first await: a concurrent request sees it.
    this.active.set(request.id, '');
    try {
      let image: Image = { id: request.id, type: request.type, volume: '', snapshot: '', size: 0, status: 'pending' };
      for (const stage of plan.sync) {
        const response = await this.engine.timedStage<ImageResponse | undefined>(stage, request, { log: asPluginLogger(this.log) }, args);
        image = checkedImages(response ?? { images: [] }, stage.handle.name)[0] ?? image;
      }
      const job = await this.engine.submit(HOST_JOB, action, { ...args, request });
      this.active.set(request.id, job.ID);
      return { job, image };
    } catch (error) {
      this.active.delete(request.id);
      throw error;
    }
  }

  /** `changes`: the action writes images (fetch, delete, upload), so it waits for recovery. */
  private plan(action: ImageAction, changes = true): ImagePlan {
    this.engine.checkAccepting(changes);
    const plan = this.plans.image.get(action);
    if (!plan) throw Errors.actionNotConfigured(`this agent's config maps no stages to "${action}"; add actions.${action} to the config (docs/images.md)`);
    return plan;
  }

  private busy(id: string): Error {
    const jobId = this.active.get(id);
    return Errors.conflict(`image ${id} has a fetch or delete in progress${jobId ? ` (job ${jobId})` : ''}; wait for it to end`);
  }

  /**
   * Whether a job (or a request's checks) holds the image. A job that ended
   * without running (cancelled while queued) holds nothing.
   */
  private isBusy(id: string): boolean {
    const jobId = this.active.get(id);
    if (jobId === undefined) return false;
    const job = jobId ? this.jobs.get(jobId) : undefined;
    if (jobId && (!job || isFinished(job.Status))) {
      this.active.delete(id);
      return false;
    }
    return true;
  }

  /** The job: the async stages of its action, the transfer's progress in the job's Message. */
  private async execute({ job, args: stored, cancel, stage }: JobRun): Promise<JobResult> {
    const { request: _request, ...args } = stored;
    const request = requestOf(stored);
    try {
      if (!request) throw new Error(`job ${job.ID} was stored without its image request; fetch the image again`);
      const plan = this.plans.image.get(job.Action as ImageAction);
      if (!plan) throw new Error(`action "${job.Action}" is no longer configured`);
      // Progress goes to the job's Message; writes are coalesced by the store.
      const progress = (p: TransferProgress) => {
        if (!cancel.aborted) void this.jobs.update(job.ID, { Message: describeProgress(p) }).catch(() => undefined);
      };
      let images: Image[] = [];
      for (const planned of plan.async) {
        const response = await stage<ImageResponse | undefined>(planned, request, args, progress);
        if (response) images = checkedImages(response, planned.handle.name);
      }
      const image = images[0];
      return { message: image && job.Action.endsWith('etchImage') ? `image ${image.id} is ready (${image.size} MiB)` : '' };
    } finally {
      if (request && this.active.get(request.id) === job.ID) this.active.delete(request.id);
    }
  }
}

function requestOf(args: Record<string, unknown>): ImageRequest | undefined {
  const request = args.request as ImageRequest | undefined;
  return request && typeof request.id === 'string' ? request : undefined;
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

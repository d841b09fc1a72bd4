/** timeoutArg: `?timeout=` as a query string or a config number, else the backend's default. */
import { expect } from 'chai';
import { StageRejection, timeoutArg } from '../../../core/contract/index.js';

describe('backend kit: stage timeout from args', () => {
  it('takes the seconds a query (string) or a config (number) gives', () => {
    expect(timeoutArg({ timeout: '12' }, 30)).to.equal(12);
    expect(timeoutArg({ timeout: '0.5' }, 30)).to.equal(0.5);
    expect(timeoutArg({ timeout: 45 }, 30)).to.equal(45);
  });
  it('falls back when there is none, as Go clients send it (absent, "", null) or no args at all', () => {
    for (const args of [{}, { timeout: '' }, { timeout: null }, undefined]) expect(timeoutArg(args, 30)).to.equal(30);
  });
  it('answers 400 naming the value for anything but a positive number', () => {
    for (const bad of ['abc', '-1', '0', 'Infinity', 0, -5, true]) {
      const error = (() => {
        try {
          timeoutArg({ timeout: bad }, 30);
        } catch (e) {
          return e;
        }
      })();
      expect(error, String(bad)).to.be.instanceOf(StageRejection);
      expect((error as StageRejection).status).to.equal(400);
      expect((error as StageRejection).message).to.equal(`timeout must be a positive number of seconds, got "${String(bad)}"`);
    }
  });
});

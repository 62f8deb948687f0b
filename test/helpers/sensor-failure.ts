import * as assert from 'uvu/assert';
import { SensorError } from '../../sensors/sensor.ts';

/** The SensorError a read (or any promise) rejects with; fails the test when it resolves. */
export async function sensorFailure(promise: Promise<unknown>): Promise<SensorError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, SensorError);
    return err as SensorError;
  }
  throw new Error('expected the read to fail');
}

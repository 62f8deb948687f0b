// The Mosquitto harness lives in harness/, where the benches can use it too.
export * from '../../harness/mosquitto.ts';

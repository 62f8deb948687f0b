import { startMosquitto } from './test/helpers/mosquitto.ts';
const b = await startMosquitto();
console.log(b.url);
setTimeout(() => b.stop().then(() => console.log('stopped')), 60000);

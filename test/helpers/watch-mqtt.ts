// Prints every message on an MQTT topic filter as one line, "<topic> <payload>": a
// subscriber that runs where the test process cannot connect (inside a network namespace).
// Usage: node test/helpers/watch-mqtt.ts URL FILTER
import mqtt from 'mqtt';

const [url, filter] = process.argv.slice(2);
if (!url || !filter) {
  process.stderr.write('usage: watch-mqtt.ts URL FILTER\n');
  process.exit(2);
}
const client = mqtt.connect(url, { reconnectPeriod: 200, clean: true });
client.on('connect', () => client.subscribe(filter, { qos: 1 }));
client.on('message', (topic, payload) => process.stdout.write(`${topic} ${payload.toString().replace(/\n/g, ' ')}\n`));
client.on('error', () => { /* reconnects */ });
process.on('SIGTERM', () => client.end(true, () => process.exit(0)));

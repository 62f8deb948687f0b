// Opens the UART of a sensor (PMS5003, SDS011, GPS) through @serialport/stream, the
// same bindings the radios use. Raw 8N1 at the sensor's baud rate; bytes go to a
// callback, and the port's end (unplugged, EIO) is reported once so the sensor can
// reopen it later. The module is imported only when a UART sensor is configured.

export interface UartPort {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface UartHandlers {
  onData(bytes: Uint8Array): void;
  /** The port closed by itself (device gone, I/O error). */
  onClose(error: Error | undefined): void;
}

export type UartOpener = (path: string, baudRate: number, handlers: UartHandlers) => Promise<UartPort>;

export const openUartSensorPort: UartOpener = async (path, baudRate, handlers) => {
  const [{ SerialPortStream }, { autoDetect }] = await Promise.all([import('@serialport/stream'), import('@serialport/bindings-cpp')]);
  const port = new SerialPortStream({ binding: autoDetect(), path, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(new Error(`cannot open ${path}: ${err.message}`)) : resolve())));
  let closing = false;
  let lastError: Error | undefined;
  port.on('data', (chunk: Buffer) => handlers.onData(chunk));
  port.on('error', (err: Error) => { lastError = err; });
  port.on('close', () => { if (!closing) handlers.onClose(lastError ?? new Error(`${path} closed`)); });
  return {
    write: (bytes) => new Promise<void>((resolve, reject) => {
      port.write(Buffer.from(bytes), (err) => (err ? reject(err) : port.drain(() => resolve())));
    }),
    close: () => new Promise<void>((resolve) => {
      closing = true;
      if (!port.isOpen) return resolve();
      port.close(() => resolve());
    }),
  };
};

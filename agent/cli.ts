#!/usr/bin/env node
// Process entry of the iop-agent command.
import { main } from './main.ts';
import { runAsProcess } from './process-entry.ts';

runAsProcess(main);

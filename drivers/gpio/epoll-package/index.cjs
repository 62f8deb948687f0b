// onoff does require('epoll'); package.json's overrides point that here, so the addon
// comes from the agent's addon layout in a single executable and from images/addons.ts's
// build in a checkout, never from a compile at npm install (which would download headers).
'use strict';
module.exports = require('../epoll-addon.ts').loadEpollAddon();

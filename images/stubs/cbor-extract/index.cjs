// cbor-x checks `if (extractor)` after require('cbor-extract'): null keeps it on its
// JavaScript decoder, as it is inside the single executable.
module.exports = null;

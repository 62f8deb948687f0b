// SPDX-License-Identifier: MIT
// What the registry (IopRegistry.sol) and the claim contract (IopRewards.sol) share:
// gateways authorised by gateways, and one write-once root per epoch. One definition, so
// both have the same functions, events and errors and the gateway's anchorer
// (agent/chain/anchorer.ts) drives either.
pragma solidity 0.8.37;

abstract contract IopGatewayAnchors {
    mapping(address => bool) public authorized;
    mapping(uint64 => bytes32) internal roots;

    event Authorized(address indexed gateway, address indexed by);
    event Anchored(uint64 indexed epoch, bytes32 root, address gateway);

    error NotAuthorized(address caller);
    error ZeroRoot(uint64 epoch);
    error AlreadyAnchored(uint64 epoch, bytes32 root);

    constructor() {
        authorized[msg.sender] = true;
        emit Authorized(msg.sender, msg.sender);
    }

    modifier onlyGateway() {
        if (!authorized[msg.sender]) revert NotAuthorized(msg.sender);
        _;
    }

    function authorize(address gateway) external onlyGateway {
        authorized[gateway] = true;
        emit Authorized(gateway, msg.sender);
    }

    /// Write-once: an epoch's root never changes, whoever anchored it.
    function anchor(uint64 epoch, bytes32 root) external onlyGateway {
        if (root == bytes32(0)) revert ZeroRoot(epoch);
        bytes32 existing = roots[epoch];
        if (existing != bytes32(0)) revert AlreadyAnchored(epoch, existing);
        _beforeAnchor(epoch, root);
        roots[epoch] = root;
        emit Anchored(epoch, root, msg.sender);
    }

    /// A contract's own rule on a new root (may revert); nothing by default.
    function _beforeAnchor(uint64 epoch, bytes32 root) internal virtual {}

    function rootOf(uint64 epoch) external view returns (bytes32) {
        return roots[epoch];
    }
}

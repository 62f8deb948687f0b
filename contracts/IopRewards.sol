// SPDX-License-Identifier: MIT
// The iop-agent reward claims (docs/rewards.md, section 9), MerkleDistributor style but
// cumulative: per rewards epoch an authorised gateway posts the Merkle root of every
// owner's cumulative amount (OpenZeppelin StandardMerkleTree, leaves address, uint256);
// an owner's claim against the latest root pays what the owner has not been paid yet, so
// one claim catches up every epoch missed. Pays the chain's native value, which the
// deployer (or anyone) sends to the contract beforehand.
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IopGatewayAnchors} from "./IopGatewayAnchors.sol";

contract IopRewards is IopGatewayAnchors {
    /// The newest epoch with a root, and that root: the only one claims are checked against.
    uint64 public latestEpoch;
    bytes32 public latestRoot;
    /// What each owner has been paid so far, in total.
    mapping(address => uint256) public claimed;

    // authorize, anchor, rootOf and their events and errors: IopGatewayAnchors.sol, shared
    // with the registry, so the gateway's anchorer drives both contracts the same way.
    event Claimed(address indexed owner, uint256 amount, uint256 cumulative, uint64 epoch);
    event Funded(address indexed from, uint256 amount);

    error EpochNotNewer(uint64 epoch, uint64 latest);
    error NoRoot();
    error InvalidProof(address owner, uint256 cumulative);
    error NothingToClaim(address owner, uint256 cumulative, uint256 claimed);
    error TransferFailed(address owner, uint256 amount);

    receive() external payable {
        emit Funded(msg.sender, msg.value);
    }

    /// Epochs only move forward: cumulative amounts never go back.
    function _beforeAnchor(uint64 epoch, bytes32 root) internal override {
        if (latestRoot != bytes32(0) && epoch <= latestEpoch) revert EpochNotNewer(epoch, latestEpoch);
        latestEpoch = epoch;
        latestRoot = root;
    }

    /// Anyone may send an owner's claim; the amount always goes to the owner.
    function claim(address owner, uint256 cumulative, bytes32[] calldata proof) external {
        bytes32 root = latestRoot;
        if (root == bytes32(0)) revert NoRoot();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(owner, cumulative))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof(owner, cumulative);
        uint256 paid = claimed[owner];
        if (cumulative <= paid) revert NothingToClaim(owner, cumulative, paid);
        uint256 amount = cumulative - paid;
        // Effects before the transfer: a re-entering claim finds nothing left to pay.
        claimed[owner] = cumulative;
        emit Claimed(owner, amount, cumulative, latestEpoch);
        (bool ok,) = owner.call{value: amount}("");
        if (!ok) revert TransferFailed(owner, amount);
    }
}

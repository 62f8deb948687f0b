// SPDX-License-Identifier: MIT
// The iop-agent registry: per-epoch Merkle roots of the readings a gateway verified and
// stored (docs/chain.md), and device -> owner pairings relayed by gateways.
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IopGatewayAnchors} from "./IopGatewayAnchors.sol";

/// Gateways, their authorisation and the write-once epoch roots: IopGatewayAnchors.sol.
contract IopRegistry is IopGatewayAnchors {
    /// Same domain as the console pairing (docs/pairing.md): name and version only, no
    /// chainId and no verifyingContract, so one owner signature serves box, gateway and chain.
    bytes32 private constant DOMAIN_TYPEHASH = keccak256("EIP712Domain(string name,string version)");
    bytes32 private constant PAIRING_TYPEHASH =
        keccak256("Pairing(string device,address owner,address previousOwner,bytes32 nonce,uint64 expires)");
    bytes32 public constant DOMAIN_SEPARATOR =
        keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("iop-agent"), keccak256("1")));

    mapping(bytes32 => address) private owners; // keccak256(device) => owner
    mapping(bytes32 => bool) public nonceUsed;

    event Paired(string device, address indexed owner, address previousOwner, bytes32 nonce, address gateway);

    error PairingExpired(uint64 expires);
    error NonceUsed(bytes32 nonce);
    error NotCurrentOwner(address previousOwner, address owner);
    error WrongSigner(address signer, address expected);

    /// True when (messageHash, device, seq) is a leaf of the epoch's anchored tree
    /// (OpenZeppelin StandardMerkleTree, leaf types bytes32, string, uint64).
    function proves(uint64 epoch, bytes32 messageHash, string calldata device, uint64 seq, bytes32[] calldata proof)
        external view returns (bool)
    {
        bytes32 root = roots[epoch];
        if (root == bytes32(0)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(messageHash, device, seq))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// Records a pairing whose box signature the relaying gateway checked (the chain cannot
    /// verify Ed25519): here the owner's EIP-712 signature, the nonce and the expiry.
    function pair(
        string calldata device,
        address owner,
        address previousOwner,
        bytes32 nonce,
        uint64 expires,
        bytes calldata signature
    ) external onlyGateway {
        if (expires < block.timestamp) revert PairingExpired(expires);
        if (nonceUsed[nonce]) revert NonceUsed(nonce);
        bytes32 key = keccak256(bytes(device));
        address current = owners[key];
        // Zero previousOwner on a paired device: a factory reset, vouched for by the box's
        // signature, which the gateway checked.
        if (previousOwner != address(0) && previousOwner != current) revert NotCurrentOwner(previousOwner, current);
        bytes32 structHash =
            keccak256(abi.encode(PAIRING_TYPEHASH, key, owner, previousOwner, nonce, expires));
        // ECDSA.recover refuses high-s (malleable) signatures and bad v.
        address signer = ECDSA.recover(MessageHashUtils.toTypedDataHash(DOMAIN_SEPARATOR, structHash), signature);
        address expected = previousOwner == address(0) ? owner : previousOwner;
        if (signer != expected) revert WrongSigner(signer, expected);
        nonceUsed[nonce] = true;
        owners[key] = owner;
        emit Paired(device, owner, previousOwner, nonce, msg.sender);
    }

    function ownerOf(string calldata device) external view returns (address) {
        return owners[keccak256(bytes(device))];
    }
}

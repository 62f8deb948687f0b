// SPDX-License-Identifier: MIT
// The iop-agent stake registry (docs/rewards.md, section 7): owners stake the chain's
// native value and take it back when they like. The gateway reads every staker's stake
// when it closes a rewards epoch. Deliberately minimal: no lock-up, no slashing, no
// delegation; a later version may add them without changing stakeOf().
pragma solidity 0.8.37;

contract IopStaking {
    mapping(address => uint256) public stakeOf;
    uint256 public totalStaked;
    /// Every address that ever staked, in order of its first stake (stakes read 0 once withdrawn).
    address[] private stakers;
    mapping(address => bool) private known;

    event Staked(address indexed owner, uint256 amount, uint256 stake);
    event Unstaked(address indexed owner, uint256 amount, uint256 stake);

    error ZeroAmount();
    error InsufficientStake(uint256 requested, uint256 staked);
    error TransferFailed(address owner, uint256 amount);

    /// Adds msg.value to the sender's stake.
    function stake() external payable {
        if (msg.value == 0) revert ZeroAmount();
        if (!known[msg.sender]) {
            known[msg.sender] = true;
            stakers.push(msg.sender);
        }
        uint256 total = stakeOf[msg.sender] + msg.value;
        stakeOf[msg.sender] = total;
        totalStaked += msg.value;
        emit Staked(msg.sender, msg.value, total);
    }

    /// Sends `amount` of the sender's stake back to the sender.
    function unstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 staked = stakeOf[msg.sender];
        if (amount > staked) revert InsufficientStake(amount, staked);
        // Effects before the transfer: a re-entering call sees the reduced stake.
        stakeOf[msg.sender] = staked - amount;
        totalStaked -= amount;
        emit Unstaked(msg.sender, amount, staked - amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    function stakerCount() external view returns (uint256) {
        return stakers.length;
    }

    /// Stakers [from, from + count) with their current stakes (fewer at the end of the list).
    function stakesPage(uint256 from, uint256 count) external view returns (address[] memory owners, uint256[] memory amounts) {
        uint256 end = from + count > stakers.length ? stakers.length : from + count;
        uint256 n = end > from ? end - from : 0;
        owners = new address[](n);
        amounts = new uint256[](n);
        for (uint256 i = 0; i < n; i++) {
            owners[i] = stakers[from + i];
            amounts[i] = stakeOf[owners[i]];
        }
    }
}
